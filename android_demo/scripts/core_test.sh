#!/usr/bin/env bash
# Compile android_demo's pure-Kotlin core and run its JUnit tests on the JVM, without Gradle or an
# Android SDK: kotlinc from the npm package `kotlin-compiler`, JUnit 4 from Debian's junit4.
#
#   android_demo/scripts/core_test.sh        (what `make android-core-test` runs)
#
# The compiler is unpacked once into $CACHE (default: <repo>/.cache/kotlin, gitignored); later runs
# recompile only when a source or golden file is newer than the last build. When the toolchain
# cannot be installed (no network, no npm, no root for apt) it prints "SKIPPED: <reason>" and exits 0.
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"          # android_demo/
REPO="$(cd "$HERE/.." && pwd)"
CACHE="${KOTLIN_CACHE:-$REPO/.cache/kotlin}"
KOTLIN_VERSION="${KOTLIN_VERSION:-2.4.20}"
KOTLIN_HOME="$CACHE/kotlin-$KOTLIN_VERSION"
JUNIT_JARS="/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar"
CORE="$HERE/core"
BUILD="$CACHE/build-core"

skip() { echo "SKIPPED: $*"; exit 0; }

command -v java >/dev/null || skip "no java on PATH (install a JDK 17)"

if [ ! -x "$KOTLIN_HOME/bin/kotlinc-jvm" ]; then
    command -v npm >/dev/null || skip "no npm to fetch kotlin-compiler@$KOTLIN_VERSION"
    mkdir -p "$CACHE"
    tmp="$(mktemp -d "$CACHE/.fetch.XXXXXX")"
    if ! (cd "$tmp" && npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null 2>&1); then
        rm -rf "$tmp"; skip "could not download kotlin-compiler@$KOTLIN_VERSION with npm (offline?)"
    fi
    tar -xzf "$tmp"/kotlin-compiler-*.tgz -C "$tmp"
    chmod +x "$tmp"/package/bin/*
    rm -rf "$KOTLIN_HOME"; mv "$tmp/package" "$KOTLIN_HOME"; rm -rf "$tmp"
fi

if [ ! -f /usr/share/java/junit4.jar ] || [ ! -f /usr/share/java/hamcrest-core.jar ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -qq junit4 >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq junit4 >/dev/null 2>&1; } \
            || skip "apt-get could not install junit4"
    else
        skip "JUnit 4 is missing (apt-get install junit4)"
    fi
fi

# C1 only: the compiler runs for seconds, not minutes, so fast JIT warm-up wins (~2x here).
export JAVA_OPTS="${JAVA_OPTS:--XX:TieredStopAtLevel=1 -XX:+UseSerialGC}"
STDLIB="$KOTLIN_HOME/lib/kotlin-stdlib.jar"
SOURCES=$(find "$CORE/src/main/kotlin" "$CORE/src/test/kotlin" -name '*.kt' | sort)
STAMP="$BUILD/.built"
if [ ! -f "$STAMP" ] || [ -n "$(find "$CORE/src" -newer "$STAMP" -type f | head -1)" ]; then
    rm -rf "$BUILD"; mkdir -p "$BUILD/classes"
    echo "kotlinc $KOTLIN_VERSION: compiling $(echo "$SOURCES" | wc -l) files of android_demo/core"
    # shellcheck disable=SC2086
    "$KOTLIN_HOME/bin/kotlinc-jvm" -nowarn -jvm-target 17 -cp "$JUNIT_JARS" -d "$BUILD/classes" $SOURCES
    touch "$STAMP"
fi

TESTS=$(cd "$CORE/src/test/kotlin" && find . -name '*Test.kt' | sed 's|^\./||; s|\.kt$||; s|/|.|g' | sort)
# shellcheck disable=SC2086
exec java -cp "$BUILD/classes:$STDLIB:$JUNIT_JARS:$CORE/src/main/resources:$CORE/src/test/resources" org.junit.runner.JUnitCore $TESTS
