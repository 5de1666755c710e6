/*
 * Evidential fusion of key clips (EV9V's STFM): a port of edge/evidential.py and of the fusion
 * parts of Classifier / StreamingClassifier in edge/classifier.py.
 *
 * A model trained with the evidential loss (manifest `fusion`, kind "evidential") outputs logits
 * whose softplus is the evidence for each class. A video is classified from `key_clips` (10) key
 * clips spread evenly over it: each clip's Dirichlet parameters alpha = softplus(logits) + prior
 * are summed over the clips, the class is the argmax of the sum, and
 *
 *     probabilities = sum_clips(alpha) / S        S = sum over classes of sum_clips(alpha)
 *     uncertainty   = K / S                       (Evidential.fuse, edge/evidential.py's scale)
 *
 * What a [Prediction] reports is scaled to (0, 1]: N * K * prior / S over the N fused clips,
 * capped at 1 (Classifier.evidential), so 1 means no evidence at all.
 *
 * Golden test: EvidentialGoldenTest (fixtures by tests/golden/make_golden_evidential.py).
 */
package org.echoweave.core

import kotlin.math.exp
import kotlin.math.ln1p

/** The reference's prior evidence per class (`lamb2`) and number of key clips (`test_num_frames`). */
const val DEFAULT_PRIOR = 0.8
const val DEFAULT_KEY_CLIPS = 10

/**
 * The manifest's `fusion` entry: the model was trained with the evidential loss and its clips are
 * fused by [Evidential.fuse].
 *
 * @property prior evidence every class starts with in every clip (> 0).
 * @property keyClips clips fused per video (>= 1).
 */
data class FusionSpec(val kind: String = "evidential", val prior: Double = DEFAULT_PRIOR, val keyClips: Int = DEFAULT_KEY_CLIPS) {
    init {
        require(kind == "evidential") { "fusion kind must be 'evidential', got '$kind'" }
        require(prior > 0 && prior.isFinite()) { "fusion prior must be > 0, got $prior" }
        require(keyClips >= 1) { "fusion key_clips must be >= 1, got $keyClips" }
    }

    companion object {
        /** From a manifest's `fusion` object the schema accepted (kind, prior, key_clips). */
        fun fromJson(m: Map<String, Any?>): FusionSpec = FusionSpec(
            m["kind"] as? String ?: "evidential",
            when (val p = m["prior"]) { null -> DEFAULT_PRIOR; is Long -> p.toDouble(); else -> p as Double },
            (m["key_clips"] as? Long)?.toInt() ?: DEFAULT_KEY_CLIPS,
        )
    }
}

/**
 * The fused answer for one video (edge/evidential.py's Fusion).
 *
 * @property classId argmax of the summed Dirichlet parameters (the first one on a tie).
 * @property probabilities (K,) the summed parameters over their total.
 * @property uncertainty K / S (not scaled; see [Evidential.scaled]).
 */
class Fusion(val classId: Int, val probabilities: DoubleArray, val uncertainty: Double)

object Evidential {
    private const val LN2 = 0.693147180559945309417232121458176568  // numpy's NPY_LOGE2

    /** log(1 + exp(x)) without overflow: numpy's logaddexp(0, x), branch for branch. */
    fun softplus(x: Double): Double {
        if (x == 0.0) return LN2
        val tmp = -x
        return if (tmp > 0) ln1p(exp(-tmp)) else if (tmp <= 0) x + ln1p(exp(tmp)) else tmp  // tmp NaN: NaN
    }

    /**
     * Evidential fusion of the logits of several clips of one video (edge/evidential.py's fuse).
     *
     * @param logitsPerClip N rows of K logits (not evidence), one row per key clip.
     * @throws IllegalArgumentException no clips, no classes, rows of different length, a NaN or
     *     infinite logit, or prior <= 0.
     */
    fun fuse(logitsPerClip: List<DoubleArray>, prior: Double = DEFAULT_PRIOR): Fusion {
        require(logitsPerClip.isNotEmpty() && logitsPerClip[0].isNotEmpty()) {
            "fuse expects logits of shape (clips, classes), got ${logitsPerClip.size} clips"
        }
        val k = logitsPerClip[0].size
        require(logitsPerClip.all { it.size == k }) { "fuse: every clip needs $k logits" }
        require(logitsPerClip.all { row -> row.all { it.isFinite() } }) { "fuse: the logits hold NaN or infinite values" }
        require(prior > 0) { "fuse: prior must be > 0, got $prior" }
        // Summed clip by clip, as numpy's sum over axis 0; then over the classes.
        val alpha = DoubleArray(k)
        for (row in logitsPerClip) for (c in 0 until k) alpha[c] += softplus(row[c]) + prior
        var total = 0.0
        for (a in alpha) total += a
        return Fusion(argmax(alpha), DoubleArray(k) { alpha[it] / total }, k / total)
    }

    /**
     * Probabilities and the uncertainty a [Prediction] reports, N * K * prior / S capped at 1
     * (Classifier.evidential), for the N clips in [logitsPerClip].
     */
    fun scaled(logitsPerClip: List<DoubleArray>, prior: Double): Pair<DoubleArray, Double> {
        val fused = fuse(logitsPerClip, prior)
        return fused.probabilities to minOf(1.0, fused.uncertainty * logitsPerClip.size * prior)
    }

    /**
     * numpy's `linspace(0, stop, count).round()` as ints: i * (stop / (count - 1)) in float64, the
     * last value exactly [stop], rounded half to even (numpy's round, Math.rint).
     */
    fun linspaceRounded(stop: Int, count: Int): IntArray {
        require(count >= 1 && stop >= 0) { "linspace needs count >= 1 and stop >= 0, got $stop, $count" }
        if (count == 1) return IntArray(1)
        val step = stop.toDouble() / (count - 1)
        val y = DoubleArray(count) { if (step == 0.0) it.toDouble() / (count - 1) * stop else it * step }
        y[count - 1] = stop.toDouble()
        return IntArray(count) { Math.rint(y[it]).toInt() }
    }

    /**
     * First frames of [count] windows of [span] frames spread evenly over a video of [numFrames]
     * (key_clip_starts): from 0 to numFrames - span, [count] zeros for a video shorter than the
     * span (its window is padded), always [count] starts, non-decreasing.
     */
    fun keyClipStarts(numFrames: Int, span: Int, count: Int = DEFAULT_KEY_CLIPS): IntArray {
        require(numFrames >= 1 && span >= 1 && count >= 1) {
            "key_clip_starts needs num_frames, span and count >= 1, got $numFrames, $span, $count"
        }
        return linspaceRounded(maxOf(0, numFrames - span), count)
    }

    /** Indices of the [count] windows of [numWindows] a clip fuses (combine_windows): spread evenly, repeated when few. */
    fun keyWindows(numWindows: Int, count: Int): IntArray {
        require(numWindows >= 1) { "no windows to fuse" }
        return linspaceRounded(numWindows - 1, count)
    }
}

/**
 * A stream's sliding key clips (StreamingClassifier._fused_uncertainty): the logits of its recent
 * window predictions, fused as the current window plus earlier ones one span apart (every
 * ceil(span / hop)-th earlier prediction, newest first), at most `keyClips` of them.
 * Not thread-safe; the stream calls it under its lock.
 */
class FusedWindows(val span: Int, val hop: Int, val fusion: FusionSpec) {
    private val recent = ArrayDeque<DoubleArray>()
    private val capacity = fusion.keyClips * span  // as the Python deque's maxlen
    private val every = maxOf(1, (span + hop - 1) / hop)  // predictions come every hop frames

    init {
        require(span >= 1 && hop >= 1) { "span and hop must be >= 1, got $span, $hop" }
    }

    /** Add the newest window's logits; returns its scaled uncertainty fused with the earlier key clips. */
    fun add(logits: DoubleArray): Double {
        recent.addLast(logits)
        while (recent.size > capacity) recent.removeFirst()
        val chosen = ArrayList<DoubleArray>(fusion.keyClips)
        var i = recent.size - 1
        while (i >= 0 && chosen.size < fusion.keyClips) {
            chosen.add(recent[i]); i -= every
        }
        return Evidential.scaled(chosen, fusion.prior).second
    }

    /** Forget every window (a new stream, or a new frame geometry). */
    fun clear() = recent.clear()
}
