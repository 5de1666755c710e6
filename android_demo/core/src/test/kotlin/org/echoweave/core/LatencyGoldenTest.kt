package org.echoweave.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test

/** The overlay's latency numbers equal the benchmark harness's (benchmarks/stats.py) on the same samples. */
class LatencyGoldenTest {
    @Test
    fun statsAndVerdictMatchTheHarness() {
        for (case in Golden.json("latency/cases.json")["cases"].asList().map { it.asMap() }) {
            val name = case["name"] as String
            val got = LatencyStats.of(case["samples"].asDoubles())
            val want = case["stats"].asMap()
            assertEquals(name, want["n"].asInt(), got.n)
            for ((key, value) in listOf("mean" to got.mean, "median" to got.median, "p90" to got.p90, "p99" to got.p99,
                "min" to got.min, "max" to got.max, "std" to got.std, "trimmed_mean" to got.trimmedMean)) {
                assertEquals("$name $key", want[key].asDouble(), value, 1e-9)
            }
            val verdict = case["verdict_30fps"].asMap()
            val v = RealtimeVerdict.of(got, 30.0)
            assertEquals("$name verdict", verdict["verdict"], v.verdict)
            assertEquals("$name budget", verdict["budget_ms"].asDouble(), v.budgetMs, 1e-12)
            assertEquals("$name fps", verdict["sustainable_fps_median"].asDouble(), got.fps, 1e-9)
        }
    }

    @Test
    fun recorderKeepsTheLastSamples() {
        val r = LatencyRecorder(capacity = 3)
        assertEquals(null, r.stats())
        listOf(100.0, 1.0, 2.0, 3.0).forEach(r::add)
        assertEquals(3.0, r.stats()!!.max, 0.0)
        assertThrows(IllegalArgumentException::class.java) { LatencyStats.of(doubleArrayOf(Double.NaN)) }
    }
}
