/*
 * From logits to a decision: softmax, argmax, confidence and the "uncertain view" flag
 * (softmax and Classifier.make_prediction in edge/classifier.py), and a clip's prediction from its
 * windows (Classifier.combine_windows: the mean, or the evidential fusion of key windows).
 */
package org.echoweave.core

import kotlin.math.exp

/**
 * One classification (a window, or a whole clip).
 *
 * @property view class name.
 * @property classId index into the manifest's classes.
 * @property probabilities (K,) summing to 1.
 * @property confidence the largest probability.
 * @property uncertain confidence < the manifest's uncertain_threshold.
 * @property frameIndex 0-based index of the last frame the prediction saw.
 * @property timeS time of that frame in seconds.
 * @property latencyMs wall time spent producing it (preprocessing + runtime).
 * @property windows number of windows combined (1 for a window prediction).
 * @property uncertainty evidential uncertainty in (0, 1] of a model with a manifest `fusion`
 *     entry: N * K * prior / S over the N fused clips, 1 = no evidence ([Evidential]); null for
 *     other models.
 * @property logits a window's raw outputs (float64), which clip and stream fusion combine; null
 *     for a combined prediction.
 */
data class Prediction(
    val view: String,
    val classId: Int,
    val probabilities: DoubleArray,
    val confidence: Double,
    val uncertain: Boolean,
    val frameIndex: Int,
    val timeS: Double,
    val latencyMs: Double,
    val runtime: String = "",
    val windows: Int = 1,
    val uncertainty: Double? = null,
    val logits: DoubleArray? = null,
)

/** Softmax in float64, stabilised by subtracting the maximum (as the Python edge). */
fun softmax(logits: FloatArray): DoubleArray {
    require(logits.isNotEmpty()) { "softmax of no logits" }
    var max = Double.NEGATIVE_INFINITY
    for (z in logits) if (z > max) max = z.toDouble()
    val e = DoubleArray(logits.size) { exp(logits[it].toDouble() - max) }
    val sum = e.sum()
    return DoubleArray(e.size) { e[it] / sum }
}

/** Index of the largest value; the first one on a tie (numpy's argmax). */
fun argmax(values: DoubleArray): Int {
    var best = 0
    for (i in 1 until values.size) if (values[i] > values[best]) best = i
    return best
}

/** Wrap probabilities into a [Prediction]: argmax, its probability, and the uncertain flag. */
fun makePrediction(
    probs: DoubleArray, classNames: List<String>, uncertainThreshold: Double,
    frameIndex: Int, timeS: Double, latencyMs: Double, runtime: String = "", windows: Int = 1,
): Prediction {
    require(probs.size == classNames.size) { "${probs.size} probabilities for ${classNames.size} classes" }
    val k = argmax(probs)
    val conf = probs[k]
    return Prediction(classNames[k], k, probs, conf, conf < uncertainThreshold, frameIndex, timeS, latencyMs, runtime, windows)
}

/**
 * The clip prediction from its window predictions (Classifier.combine_windows): the last window's
 * frame and time. Without [fusion], the mean of the window probabilities over all windows. With
 * it (an evidential model), the evidence of `keyClips` windows spread evenly over the list
 * ([Evidential.keyWindows]; at hop 1 exactly the key clips of [Evidential.keyClipStarts]) is
 * fused from the windows' logits, and the prediction reports its [Prediction.uncertainty].
 *
 * @throws IllegalArgumentException no windows, or a fusion without window logits.
 */
fun combineWindows(
    windows: List<Prediction>, classNames: List<String>, uncertainThreshold: Double, fusion: FusionSpec?,
    latencyMs: Double, runtime: String = "",
): Prediction {
    require(windows.isNotEmpty()) { "no windows to combine" }
    val last = windows.last()
    if (fusion == null) {
        val probs = DoubleArray(classNames.size) { c -> windows.sumOf { it.probabilities[c] } / windows.size }
        return makePrediction(probs, classNames, uncertainThreshold, last.frameIndex, last.timeS, latencyMs, runtime, windows.size)
    }
    val keys = Evidential.keyWindows(windows.size, fusion.keyClips)
    val (probs, uncertainty) = Evidential.scaled(keys.map { i ->
        requireNotNull(windows[i].logits) { "window $i has no logits to fuse" }
    }, fusion.prior)
    return makePrediction(probs, classNames, uncertainThreshold, last.frameIndex, last.timeS, latencyMs, runtime, keys.size)
        .copy(uncertainty = uncertainty)
}
