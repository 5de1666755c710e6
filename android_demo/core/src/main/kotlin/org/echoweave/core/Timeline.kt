/*
 * Scan timeline: smooth per-window predictions of a recording into view segments, plus the
 * workflow statistics (time and share per view, transitions). A port of edge/timeline.py; read
 * its docstring for the rules, summarised here:
 *
 *  1. Mode filter over `smooth` consecutive windows (odd; 1 = off), truncated at the ends. Ties
 *     keep the window's own class if it is among the tied, else the tied class with the highest
 *     summed confidence (the smallest class id on an exact tie).
 *  2. Runs shorter than `minSegmentS` are merged into a neighbour, shortest run first: into the
 *     neighbours' class when both agree, else into the longer neighbour (the earlier on a tie).
 *
 * A prediction at time t_i covers [t_i, t_{i+1}); the last covers one median step, so segments
 * tile [t_0, t_last + step) and per-view times sum to the total.
 */
package org.echoweave.core

/** Class id of the "uncertain" pseudo-view (when uncertain windows are labelled separately). */
const val UNCERTAIN_CLASS = -1

/**
 * One stretch of the recording showing one view; [endS] is exclusive. [meanUncertainty] is the
 * mean evidential uncertainty of its windows (a model trained with the evidential loss), else null.
 */
data class Segment(
    val view: String,
    val classId: Int,
    val startS: Double,
    val endS: Double,
    val windows: Int,
    val meanConfidence: Double,
    val meanUncertainty: Double? = null,
) {
    val durationS: Double get() = endS - startS
}

/** Time spent in one view. */
data class ViewStats(val timeS: Double, val share: Double, val segments: Int, val meanConfidence: Double)

/** Workflow statistics of a segmented scan; [perView] is ordered by time spent, longest first. */
data class WorkflowStats(
    val totalS: Double,
    val segments: Int,
    val transitions: Int,
    val viewsSeen: Int,
    val sequence: List<String>,
    val perView: LinkedHashMap<String, ViewStats>,
)

/** How a timeline was smoothed (Python's Timeline.params). */
data class TimelineParams(val smooth: Int, val minSegmentS: Double, val uncertainAs: String?, val stepS: Double? = null)

/** Per-window evidential uncertainty of a recording (Python's Timeline.uncertainty). */
class UncertaintyTrace(val timeS: DoubleArray, val uncertainty: DoubleArray)

/** Segments of a recording and their statistics; [uncertainty] for a model with an evidential one. */
class Timeline(val segments: List<Segment>, val params: TimelineParams, val uncertainty: UncertaintyTrace? = null) {
    val stats: WorkflowStats by lazy { workflowStats(segments) }

    /** The JSON layout of Timeline.to_dict() in Python (segments, stats, params). */
    fun toJson(): String {
        val segs = segments.map {
            val m = linkedMapOf<String, Any?>("view" to it.view, "class_id" to it.classId, "start_s" to it.startS,
                "end_s" to it.endS, "windows" to it.windows, "mean_confidence" to it.meanConfidence)
            it.meanUncertainty?.let { u -> m["mean_uncertainty"] = u }
            m["duration_s"] = it.durationS
            m
        }
        val s = stats
        val perView = LinkedHashMap<String, Any?>()
        for ((view, v) in s.perView) {
            perView[view] = linkedMapOf("time_s" to v.timeS, "share" to v.share, "segments" to v.segments,
                "mean_confidence" to v.meanConfidence)
        }
        val statsMap = linkedMapOf("total_s" to s.totalS, "segments" to s.segments, "transitions" to s.transitions,
            "views_seen" to s.viewsSeen, "sequence" to s.sequence, "per_view" to perView)
        val p = linkedMapOf<String, Any?>("smooth" to params.smooth, "min_segment_s" to params.minSegmentS,
            "uncertain_as" to params.uncertainAs)
        params.stepS?.let { p["step_s"] = it }
        val doc = linkedMapOf<String, Any?>("segments" to segs, "stats" to statsMap, "params" to p)
        uncertainty?.let { doc["uncertainty"] = linkedMapOf("time_s" to it.timeS.toList(), "uncertainty" to it.uncertainty.toList()) }
        return Json.write(doc)
    }
}

/** Most frequent label in a centred window of [size] (odd) labels; ties as in the file comment. */
fun modeFilter(labels: IntArray, confidences: DoubleArray, size: Int): IntArray {
    require(size >= 1 && size % 2 == 1) { "smooth must be an odd positive number of windows, got $size" }
    if (size == 1 || labels.isEmpty()) return labels.copyOf()
    val r = size / 2
    val out = labels.copyOf()
    for (i in labels.indices) {
        val lo = maxOf(0, i - r)
        val hi = minOf(labels.size, i + r + 1)
        val counts = sortedMapOf<Int, Int>()  // ascending, as np.unique
        for (j in lo until hi) counts[labels[j]] = (counts[labels[j]] ?: 0) + 1
        val top = counts.values.max()
        val tied = counts.filterValues { it == top }.keys.toList()
        if (labels[i] in tied) continue
        var best = tied[0]
        var bestWeight = Double.NEGATIVE_INFINITY
        for (v in tied) {
            var w = 0.0
            for (j in lo until hi) if (labels[j] == v) w += confidences[j]
            if (w > bestWeight) { best = v; bestWeight = w }  // first maximum, as np.argmax
        }
        out[i] = best
    }
    return out
}

/** (label, first index, stop index) of each run of equal labels. */
private fun runsOf(labels: IntArray): List<IntArray> {
    val runs = ArrayList<IntArray>()
    for ((i, lab) in labels.withIndex()) {
        val last = runs.lastOrNull()
        if (last != null && last[0] == lab) last[2] = i + 1 else runs.add(intArrayOf(lab, i, i + 1))
    }
    return runs
}

/**
 * Relabel runs shorter than [minDuration] seconds (shortest first) into their neighbours.
 *
 * @param bounds (N + 1) window boundaries in seconds (window i covers bounds[i]..bounds[i+1]).
 */
fun mergeShortRuns(labels: IntArray, bounds: DoubleArray, minDuration: Double): IntArray {
    val out = labels.copyOf()
    while (true) {
        val runs = runsOf(out)
        if (runs.size < 2) return out
        val durations = runs.map { bounds[it[2]] - bounds[it[1]] }
        val short = durations.indices.filter { durations[it] < minDuration - 1e-9 }
        if (short.isEmpty()) return out
        val i = short.minWith(compareBy<Int>({ durations[it] }, { it }))
        val prev = if (i > 0) runs[i - 1] else null
        val next = if (i + 1 < runs.size) runs[i + 1] else null
        val target = when {
            prev != null && next != null && prev[0] == next[0] -> prev[0]
            prev != null && next != null -> if (durations[i - 1] >= durations[i + 1]) prev[0] else next[0]
            else -> (prev ?: next)!![0]
        }
        for (j in runs[i][1] until runs[i][2]) out[j] = target
    }
}

/** Median as numpy computes it (mean of the two middle values for an even count). */
private fun median(values: DoubleArray): Double {
    val s = values.sorted()
    val n = s.size
    return if (n % 2 == 1) s[n / 2] else (s[n / 2 - 1] + s[n / 2]) / 2.0
}

/**
 * Smooth per-window predictions (in time order) into segments (build_timeline).
 *
 * @param classNames names for class ids (default: the predictions' view names).
 * @param smooth mode-filter window in predictions (odd; 1 = off).
 * @param minSegmentS shortest segment kept, seconds (0 = off).
 * @param uncertainAs label for uncertain windows (null = keep their argmax view).
 * @throws IllegalArgumentException prediction times not strictly increasing.
 */
fun buildTimeline(
    predictions: List<Prediction>, classNames: List<String>? = null, smooth: Int = 5,
    minSegmentS: Double = 1.0, uncertainAs: String? = null,
): Timeline {
    if (predictions.isEmpty()) return Timeline(emptyList(), TimelineParams(smooth, minSegmentS, uncertainAs))
    val names = HashMap<Int, String>()
    classNames?.forEachIndexed { i, n -> names[i] = n }
    for (p in predictions) names.putIfAbsent(p.classId, p.view)
    val t = DoubleArray(predictions.size) { predictions[it].timeS }
    for (i in 1 until t.size) require(t[i] - t[i - 1] > 0) { "prediction times must be strictly increasing" }
    val labels = IntArray(t.size) { predictions[it].classId }
    val conf = DoubleArray(t.size) { predictions[it].confidence }
    // Evidential uncertainty only when every window has one (as in Python).
    val evidential = if (predictions.all { it.uncertainty != null }) DoubleArray(t.size) { predictions[it].uncertainty!! } else null
    if (uncertainAs != null) {
        for (i in labels.indices) if (predictions[i].uncertain) labels[i] = UNCERTAIN_CLASS
        names[UNCERTAIN_CLASS] = uncertainAs
    }
    val step = if (t.size > 1) median(DoubleArray(t.size - 1) { t[it + 1] - t[it] }) else 1.0
    val bounds = t + (t.last() + step)  // (N + 1)
    var smoothed = modeFilter(labels, conf, smooth)
    if (minSegmentS > 0) smoothed = mergeShortRuns(smoothed, bounds, minSegmentS)
    val segments = runsOf(smoothed).map { (lab, a, b) ->
        var sum = 0.0
        for (j in a until b) sum += conf[j]
        val meanU = evidential?.let { u -> var su = 0.0; for (j in a until b) su += u[j]; su / (b - a) }
        Segment(names[lab] ?: lab.toString(), lab, bounds[a], bounds[b], b - a, sum / (b - a), meanU)
    }
    return Timeline(segments, TimelineParams(smooth, minSegmentS, uncertainAs, step), evidential?.let { UncertaintyTrace(t, it) })
}

/** Workflow statistics of a segmented scan (workflow_stats). */
fun workflowStats(segments: List<Segment>): WorkflowStats {
    val total = segments.sumOf { it.durationS }
    class Acc(var time: Double = 0.0, var segs: Int = 0, var conf: Double = 0.0, var windows: Int = 0)
    val acc = LinkedHashMap<String, Acc>()
    for (s in segments) {
        val a = acc.getOrPut(s.view) { Acc() }
        a.time += s.durationS
        a.segs++
        a.conf += s.meanConfidence * s.windows
        a.windows += s.windows
    }
    val perView = LinkedHashMap<String, ViewStats>()
    for ((view, a) in acc.entries.sortedByDescending { it.value.time }) {  // stable: ties keep first appearance
        perView[view] = ViewStats(a.time, if (total != 0.0) a.time / total else 0.0, a.segs, a.conf / maxOf(a.windows, 1))
    }
    return WorkflowStats(total, segments.size, maxOf(segments.size - 1, 0), acc.size, segments.map { it.view }, perView)
}
