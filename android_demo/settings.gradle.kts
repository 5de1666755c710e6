// echoweave Android demo: `core` (pure Kotlin/JVM, tested against the Python edge's golden
// vectors) and `app` (the Android application that streams clips through the exported model).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()        // LiteRT (com.google.ai.edge.litert), AndroidX, CameraX
        mavenCentral()  // ExecuTorch (org.pytorch:executorch-android), coroutines
    }
}
rootProject.name = "echoweave-android-demo"
include(":core", ":app")
