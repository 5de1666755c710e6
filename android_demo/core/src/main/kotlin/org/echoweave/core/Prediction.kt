/*
 * From logits to a decision: softmax, argmax, confidence and the "uncertain view" flag
 * (softmax and Classifier.make_prediction in edge/classifier.py).
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
