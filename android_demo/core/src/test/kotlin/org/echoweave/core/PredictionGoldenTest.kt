package org.echoweave.core

import org.junit.Assert.assertEquals
import org.junit.Test

/** softmax, argmax, confidence and the uncertain flag as edge/classifier.py computes them. */
class PredictionGoldenTest {
    @Test
    fun softmaxConfidenceAndUncertainMatchPython() {
        val cases = Golden.json("softmax/cases.json")["cases"].asList().map { it.asMap() }
        for ((i, case) in cases.withIndex()) {
            val logits = case["logits"].asDoubles().map { it.toFloat() }.toFloatArray()
            val names = List(logits.size) { "c$it" }
            val p = makePrediction(softmax(logits), names, case["threshold"].asDouble(), 0, 0.0, 0.0)
            assertClose("case $i probabilities", case["probabilities"].asDoubles(), p.probabilities, atol = 1e-12)
            assertEquals("case $i class", case["class_id"].asInt(), p.classId)
            assertEquals("case $i confidence", case["confidence"].asDouble(), p.confidence, 1e-12)
            assertEquals("case $i uncertain", case["uncertain"], p.uncertain)
        }
    }
}
