/*
 * Per-frame latency statistics in the benchmark harness's fields (benchmarks/stats.py), so a
 * number read off the phone's screen compares one-to-one with perf.json: n, mean, median, p90,
 * p99, min, max, std (sample, ddof=1), trimmed mean (10 % cut at each end), plus the real-time
 * verdict against a frame budget. Percentiles use numpy's default linear interpolation.
 */
package org.echoweave.core

import kotlin.math.floor
import kotlin.math.sqrt

/** Summary of per-call latencies in milliseconds (latency_stats). */
data class LatencyStats(
    val n: Int, val mean: Double, val median: Double, val p90: Double, val p99: Double,
    val min: Double, val max: Double, val std: Double, val trimmedMean: Double,
) {
    /** Frames per second the median latency sustains (one frame per call). */
    val fps: Double get() = if (median > 0) 1000.0 / median else Double.POSITIVE_INFINITY

    /** One line for the overlay and logcat: the harness's field names. */
    fun summary(): String = "n=%d median=%.2f p90=%.2f p99=%.2f ms fps=%.1f".format(n, median, p90, p99, fps)

    companion object {
        /** Statistics of [samplesMs]; [trim] is the share cut at each end for the trimmed mean. */
        fun of(samplesMs: DoubleArray, trim: Double = 0.1): LatencyStats {
            require(samplesMs.isNotEmpty()) { "no latency samples" }
            require(samplesMs.all { it.isFinite() && it >= 0 }) { "latencies must be finite and non-negative" }
            val x = samplesMs.sortedArray()
            val n = x.size
            val mean = x.sum() / n
            val std = if (n > 1) sqrt(x.sumOf { (it - mean) * (it - mean) } / (n - 1)) else 0.0
            val cut = (trim * n).toInt()
            val kept = if (cut > 0) x.copyOfRange(cut, n - cut) else x
            return LatencyStats(n, mean, percentileSorted(x, 50.0), percentileSorted(x, 90.0), percentileSorted(x, 99.0),
                x.first(), x.last(), std, kept.sum() / kept.size)
        }
    }
}

/** numpy's linear percentile of sorted float64 values (q in 0..100). */
fun percentileSorted(sorted: DoubleArray, q: Double): Double {
    val n = sorted.size
    val quantile = q / 100.0
    val virtual = n * quantile + (1.0 + quantile * (1.0 - 1.0 - 1.0)) - 1.0
    val prev = floor(virtual)
    val gamma = virtual - prev
    val i0 = prev.toInt().coerceIn(0, n - 1)
    val a = sorted[i0]
    val b = sorted[(i0 + 1).coerceAtMost(n - 1)]
    val diff = b - a
    return if (gamma >= 0.5) b - diff * (1.0 - gamma) else a + diff * gamma
}

/** Does a stream keep up at [fps]? (realtime_verdict with mode "stream": the budget is one frame period.) */
data class RealtimeVerdict(val budgetMs: Double, val headroomMedian: Double, val headroomP99: Double, val verdict: String) {
    companion object {
        fun of(stats: LatencyStats, fps: Double): RealtimeVerdict {
            require(fps > 0) { "fps must be positive, got $fps" }
            val budget = 1000.0 / fps
            val verdict = when {
                stats.p99 <= budget -> "real-time"
                stats.median <= budget -> "real-time at the median only"
                else -> "too slow"
            }
            fun headroom(v: Double) = if (v > 0) budget / v else Double.POSITIVE_INFINITY
            return RealtimeVerdict(budget, headroom(stats.median), headroom(stats.p99), verdict)
        }
    }
}

/** The last [capacity] latencies of a running stream (thread-safe), for a live overlay. */
class LatencyRecorder(private val capacity: Int = 300) {
    private val samples = ArrayDeque<Double>()

    @Synchronized
    fun add(ms: Double) {
        samples.addLast(ms)
        while (samples.size > capacity) samples.removeFirst()
    }

    /** Statistics of the recorded window, or null before the first sample. */
    @Synchronized
    fun stats(): LatencyStats? = if (samples.isEmpty()) null else LatencyStats.of(samples.toDoubleArray())

    @Synchronized
    fun clear() = samples.clear()
}
