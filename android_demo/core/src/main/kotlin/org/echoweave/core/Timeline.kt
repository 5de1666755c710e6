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
 *
 * Background: with `uncertainAs` (`echoweave classify` uses [BACKGROUND]), uncertain windows
 * become the pseudo-view [UNCERTAIN_CLASS] before smoothing; with `viewChangeS` > 0 so do the
 * windows where the model's belief is changing ([viewChange] above `viewChangeThreshold`, the
 * probe moving between views). [scanWorkflow] counts that time as its own class but leaves it out
 * of the view order, the visits and the view-to-view transitions.
 */
package org.echoweave.core

import kotlin.math.ln

/** Class id of the "uncertain" pseudo-view (when uncertain windows are labelled separately). */
const val UNCERTAIN_CLASS = -1

/** Label of time showing no standard view (probe moving between views, searching); class id [UNCERTAIN_CLASS]. */
const val BACKGROUND = "background"

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

    /** Time showing no standard view: the uncertain pseudo-view (class id < 0) or a segment labelled [BACKGROUND] (is_background). */
    val isBackground: Boolean get() = classId < 0 || view == BACKGROUND
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

/**
 * How a timeline was smoothed (Python's Timeline.params); [viewChangeS] and [viewChangeThreshold]
 * only when the view-change rule ran.
 */
data class TimelineParams(
    val smooth: Int, val minSegmentS: Double, val uncertainAs: String?, val stepS: Double? = null,
    val viewChangeS: Double? = null, val viewChangeThreshold: Double? = null,
)

/** Workflow of one view in a [ScanWorkflow]: [ViewStats] plus its visits, first start and mean visit time. */
data class ViewWorkflow(
    val timeS: Double,
    val share: Double,
    val segments: Int,
    val meanConfidence: Double,
    val visits: Int,
    val firstS: Double,
    val meanVisitS: Double,
)

/** [count] moves from view [from] to view [to] in a scan's visit sequence. */
data class ViewTransition(val from: String, val to: String, val count: Int)

/**
 * What a sonographer or a trainer asks of a whole examination (Python's scan_workflow): the
 * [WorkflowStats] fields, per view also [ViewWorkflow.visits], [ViewWorkflow.firstS] and
 * [ViewWorkflow.meanVisitS]; [order] (standard views by first appearance), [visitSequence]
 * (standard views visited in order, background removed and repeats merged), [viewTransitions]
 * (in order of first occurrence) and [backgroundS]. Background has a [perView] entry (its visits
 * are its segments) but is left out of [order], [visitSequence] and [viewTransitions].
 */
data class ScanWorkflow(
    val totalS: Double,
    val segments: Int,
    val transitions: Int,
    val viewsSeen: Int,
    val sequence: List<String>,
    val perView: LinkedHashMap<String, ViewWorkflow>,
    val order: List<String>,
    val visitSequence: List<String>,
    val viewTransitions: List<ViewTransition>,
    val backgroundS: Double,
) {
    /** The layout of scan_workflow's dict in Python (for JSON: `Json.write(workflow.toMap())`). */
    fun toMap(): LinkedHashMap<String, Any?> {
        val views = LinkedHashMap<String, Any?>()
        for ((view, v) in perView) {
            views[view] = linkedMapOf("time_s" to v.timeS, "share" to v.share, "segments" to v.segments,
                "mean_confidence" to v.meanConfidence, "visits" to v.visits, "first_s" to v.firstS,
                "mean_visit_s" to v.meanVisitS)
        }
        return linkedMapOf("total_s" to totalS, "segments" to segments, "transitions" to transitions,
            "views_seen" to viewsSeen, "sequence" to sequence, "per_view" to views, "order" to order,
            "visit_sequence" to visitSequence, "view_transitions" to viewTransitions.map { listOf(it.from, it.to, it.count) },
            "background_s" to backgroundS)
    }
}

/** Per-window evidential uncertainty of a recording (Python's Timeline.uncertainty). */
class UncertaintyTrace(val timeS: DoubleArray, val uncertainty: DoubleArray)

/** Segments of a recording and their statistics; [uncertainty] for a model with an evidential one. */
class Timeline(val segments: List<Segment>, val params: TimelineParams, val uncertainty: UncertaintyTrace? = null) {
    val stats: WorkflowStats by lazy { workflowStats(segments) }

    /** [scanWorkflow] of the segments: the statistics plus order, visits and view transitions. */
    val workflow: ScanWorkflow by lazy { scanWorkflow(segments) }

    /**
     * The JSON layout of Timeline.to_dict() in Python (segments, stats, params); with
     * [withWorkflow], that of Timeline.write_json (also "workflow", the [workflow]).
     */
    fun toJson(withWorkflow: Boolean = false): String {
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
        params.viewChangeS?.let { p["view_change_s"] = it }
        params.viewChangeThreshold?.let { p["view_change_threshold"] = it }
        params.stepS?.let { p["step_s"] = it }
        val doc = linkedMapOf<String, Any?>("segments" to segs, "stats" to statsMap, "params" to p)
        uncertainty?.let { doc["uncertainty"] = linkedMapOf("time_s" to it.timeS.toList(), "uncertainty" to it.uncertainty.toList()) }
        if (withWorkflow) doc["workflow"] = workflow.toMap()
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
 * How much the model's belief changes around each window (view_change): the Jensen-Shannon
 * divergence (nats, 0 .. ln 2) between the mean probabilities of the windows in [t - halfS, t)
 * and in [t, t + halfS]. High while the probe moves from one view to the next. The first window
 * (nothing before it) compares itself with what follows.
 *
 * @param times (N) increasing window times in seconds.
 * @param probabilities (N) per-window class probabilities, K each.
 * @param halfS seconds on each side.
 */
fun viewChange(times: DoubleArray, probabilities: List<DoubleArray>, halfS: Double): DoubleArray {
    require(probabilities.size == times.size) { "${probabilities.size} probability rows for ${times.size} times" }
    val n = times.size
    if (n == 0) return DoubleArray(0)
    val k = probabilities[0].size
    require(probabilities.all { it.size == k }) { "probability rows of different lengths" }
    // Prefix sums in float64 as numpy's cumsum (row 0 is zeros), so the window means equal Python's.
    val csum = Array(n + 1) { DoubleArray(k) }
    for (i in 0 until n) for (j in 0 until k) csum[i + 1][j] = csum[i][j] + probabilities[i][j]
    val out = DoubleArray(n)
    for (i in 0 until n) {
        val lo = searchLeft(times, times[i] - halfS)
        val hi = searchRight(times, times[i] + halfS)
        val before = if (i == lo) probabilities[i].copyOf() else DoubleArray(k) { (csum[i][it] - csum[lo][it]) / (i - lo) }
        val after = DoubleArray(k) { (csum[hi][it] - csum[i][it]) / (hi - i) }
        val mid = DoubleArray(k) { (before[it] + after[it]) / 2 }
        out[i] = 0.5 * kl(before, mid) + 0.5 * kl(after, mid)
    }
    return out
}

/** Kullback-Leibler divergence sum(a * ln(a / b)) over a > 0, with numpy's 1e-300 floors. */
private fun kl(a: DoubleArray, b: DoubleArray): Double {
    var sum = 0.0
    for (j in a.indices) if (a[j] > 0) sum += a[j] * ln(maxOf(a[j], 1e-300) / maxOf(b[j], 1e-300))
    return sum
}

/** First index whose value is >= [x] in increasing [values] (np.searchsorted side="left"). */
private fun searchLeft(values: DoubleArray, x: Double): Int {
    var lo = 0
    var hi = values.size
    while (lo < hi) { val m = (lo + hi) ushr 1; if (values[m] < x) lo = m + 1 else hi = m }
    return lo
}

/** First index whose value is > [x] in increasing [values] (np.searchsorted side="right"). */
private fun searchRight(values: DoubleArray, x: Double): Int {
    var lo = 0
    var hi = values.size
    while (lo < hi) { val m = (lo + hi) ushr 1; if (values[m] <= x) lo = m + 1 else hi = m }
    return lo
}

/**
 * Smooth per-window predictions (in time order) into segments (build_timeline).
 *
 * `echoweave classify` calls it with smooth 5, minSegmentS 1.0, uncertainAs [BACKGROUND],
 * viewChangeS 1.0 and viewChangeThreshold 0.15 (its --no-background: uncertainAs null, viewChangeS 0).
 *
 * @param classNames names for class ids (default: the predictions' view names).
 * @param smooth mode-filter window in predictions (odd; 1 = off).
 * @param minSegmentS shortest segment kept, seconds (0 = off).
 * @param uncertainAs label for uncertain windows (null = keep their argmax view).
 * @param viewChangeS with [uncertainAs], also treat as uncertain the windows where the model's
 *     belief is changing: [viewChange] over this many seconds on each side (of the predictions'
 *     probabilities) above [viewChangeThreshold] (0 = off).
 * @param viewChangeThreshold Jensen-Shannon divergence in nats (0 .. ln 2 = 0.69); strictly above it counts.
 * @throws IllegalArgumentException prediction times not strictly increasing, or [viewChangeS]
 *     without [uncertainAs].
 */
fun buildTimeline(
    predictions: List<Prediction>, classNames: List<String>? = null, smooth: Int = 5,
    minSegmentS: Double = 1.0, uncertainAs: String? = null, viewChangeS: Double = 0.0,
    viewChangeThreshold: Double = 0.15,
): Timeline {
    if (predictions.isEmpty()) return Timeline(emptyList(), TimelineParams(smooth, minSegmentS, uncertainAs))
    val names = HashMap<Int, String>()
    classNames?.forEachIndexed { i, n -> names[i] = n }
    for (p in predictions) names.putIfAbsent(p.classId, p.view)
    val t = DoubleArray(predictions.size) { predictions[it].timeS }
    checkIncreasing(t)
    val uncertain = BooleanArray(t.size) { predictions[it].uncertain }
    var params = TimelineParams(smooth, minSegmentS, uncertainAs)
    if (viewChangeS > 0) {
        require(uncertainAs != null) { "view_change_s needs uncertain_as and predictions (with probabilities)" }
        val change = viewChange(t, predictions.map { it.probabilities }, viewChangeS)
        for (i in uncertain.indices) if (change[i] > viewChangeThreshold) uncertain[i] = true
        params = params.copy(viewChangeS = viewChangeS, viewChangeThreshold = viewChangeThreshold)
    }
    // Evidential uncertainty only when every window has one (as in Python).
    val evidential = if (predictions.all { it.uncertainty != null }) DoubleArray(t.size) { predictions[it].uncertainty!! } else null
    return smoothIntoTimeline(t, IntArray(t.size) { predictions[it].classId }, DoubleArray(t.size) { predictions[it].confidence },
        uncertain, names, smooth, minSegmentS, uncertainAs, params, evidential)
}

/**
 * [buildTimeline] on bare arrays instead of predictions (build_timeline's times, class_ids and
 * confidences): no window is uncertain, views are named by [classNames] only (else the class id
 * as text), and there are no probabilities for the view-change rule.
 *
 * @throws IllegalArgumentException arrays of different lengths, or times not strictly increasing.
 */
fun buildTimeline(
    times: DoubleArray, classIds: IntArray, confidences: DoubleArray, classNames: List<String>? = null,
    smooth: Int = 5, minSegmentS: Double = 1.0, uncertainAs: String? = null,
): Timeline {
    require(classIds.size == times.size && confidences.size == times.size) {
        "${times.size} times, ${classIds.size} class ids and ${confidences.size} confidences"
    }
    if (times.isEmpty()) return Timeline(emptyList(), TimelineParams(smooth, minSegmentS, uncertainAs))
    checkIncreasing(times)
    val names = HashMap<Int, String>()
    classNames?.forEachIndexed { i, n -> names[i] = n }
    return smoothIntoTimeline(times, classIds, confidences, BooleanArray(times.size), names, smooth, minSegmentS,
        uncertainAs, TimelineParams(smooth, minSegmentS, uncertainAs), null)
}

private fun checkIncreasing(t: DoubleArray) {
    for (i in 1 until t.size) require(t[i] - t[i - 1] > 0) { "prediction times must be strictly increasing" }
}

/** The common part of both [buildTimeline]s: uncertain labels, mode filter, short-run merge, segments. */
private fun smoothIntoTimeline(
    t: DoubleArray, classIds: IntArray, conf: DoubleArray, uncertain: BooleanArray, names: HashMap<Int, String>,
    smooth: Int, minSegmentS: Double, uncertainAs: String?, params: TimelineParams, evidential: DoubleArray?,
): Timeline {
    val labels = classIds.copyOf()
    if (uncertainAs != null) {
        for (i in labels.indices) if (uncertain[i]) labels[i] = UNCERTAIN_CLASS
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
    return Timeline(segments, params.copy(stepS = step), evidential?.let { UncertaintyTrace(t, it) })
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

/**
 * [workflowStats] plus the whole examination's workflow (scan_workflow): which views in what
 * order, how many visits to each, and the view-to-view transitions. Background
 * ([Segment.isBackground]) has a [ScanWorkflow.perView] entry like a view but is left out of the
 * order, the visits and the transitions: A -> background -> B is one transition A -> B, and
 * A, background, A is one visit of A in two segments.
 */
fun scanWorkflow(segments: List<Segment>): ScanWorkflow {
    val stats = workflowStats(segments)
    val visits = ArrayList<String>()
    for (s in segments) if (!s.isBackground && (visits.isEmpty() || visits.last() != s.view)) visits.add(s.view)
    val perView = LinkedHashMap<String, ViewWorkflow>()
    for ((view, v) in stats.perView) {
        val mine = segments.filter { it.view == view }
        val n = if (mine[0].isBackground) mine.size else visits.count { it == view }
        perView[view] = ViewWorkflow(v.timeS, v.share, v.segments, v.meanConfidence, n, mine[0].startS, v.timeS / n)
    }
    val pairs = LinkedHashMap<Pair<String, String>, Int>()  // first occurrence order, as a Python dict
    for (i in 1 until visits.size) {
        val key = visits[i - 1] to visits[i]
        pairs[key] = (pairs[key] ?: 0) + 1
    }
    var background = 0.0
    for (s in segments) if (s.isBackground) background += s.durationS
    return ScanWorkflow(stats.totalS, stats.segments, stats.transitions, stats.viewsSeen, stats.sequence, perView,
        visits.distinct(), visits, pairs.map { (k, n) -> ViewTransition(k.first, k.second, n) }, background)
}
