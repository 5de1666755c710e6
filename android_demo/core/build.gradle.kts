// Pure Kotlin/JVM: no Android dependencies, so the same code is unit-tested on any JVM
// (here: `make android-core-test` compiles it with kotlinc and runs JUnit 4 without Gradle).
plugins {
    alias(libs.plugins.kotlin.jvm)
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    testImplementation(libs.junit)
}
