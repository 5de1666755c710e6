package org.echoweave.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull

/**
 * One golden stream file written by make_golden.py (stream/cases.json, stream/stride2_cases.json):
 * its fixed linear model, clips and model facts, and the checks that replay its scenarios and
 * whole-clip cases through [StreamingClassifier] and [ClipClassifier].
 */
class StreamGolden(path: String) {
    val golden = Golden.json(path)
    val info = ModelInfo(golden["classes"].asList().map { it as String }, golden["frames"].asInt(),
        PreprocessSpec.fromJson(golden["spec"].asMap()), golden["uncertain_threshold"].asDouble(),
        frameStride = golden["frame_stride"]?.asInt() ?: 1)
    val clips = golden["clips"].asMap().mapValues { Golden.npy(it.value as String).frames() }
    val givenMask = Golden.npy(golden["given_mask"] as String).let { npy ->
        sectorFromMask(BooleanArray(npy.size) { npy.bytes[it].toInt() != 0 }, npy.shape[0], npy.shape[1])
    }

    /** embed = W_e x + b_e, head = W_h f + b_h, in float64 rounded to float32 like the Python twin. */
    class LinearModel(golden: Map<String, Any?>) : FrameModel {
        private val m = golden["model"].asMap()
        private val ew = Golden.npy(m["embed_w"] as String)
        private val eb = Golden.npy(m["embed_b"] as String).floats()
        private val hw = Golden.npy(m["head_w"] as String)
        private val hb = Golden.npy(m["head_b"] as String).floats()
        private val ewf = ew.floats()
        private val hwf = hw.floats()
        override val runtimeName = "golden-linear"
        var calls = 0
        var windowsSeen = 0

        private fun affine(w: FloatArray, rows: Int, b: FloatArray, x: FloatArray): FloatArray {
            val n = x.size
            check(w.size == rows * n) { "weights ${w.size} for input $n" }
            return FloatArray(rows) { r -> var s = 0.0; for (i in 0 until n) s += x[i].toDouble() * w[r * n + i]; (s + b[r]).toFloat() }
        }

        override fun embedFrame(frame: FloatTensor): FloatArray { calls++; return affine(ewf, ew.shape[0], eb, frame.data) }
        override fun classifyWindow(features: FloatTensor): FloatArray { windowsSeen++; return affine(hwf, hw.shape[0], hb, features.data) }
    }

    fun model() = LinearModel(golden)

    fun pixels(ref: List<Any?>): Frames {
        val clip = clips.getValue(ref[0] as String)
        return clip.slice(ref[1].asInt(), ref[2].asInt())
    }

    private fun choice(name: Any?): SectorChoice =
        when (name) { "auto" -> SectorChoice.Auto; "none" -> SectorChoice.Off; else -> SectorChoice.Given(givenMask) }

    private fun checkPrediction(where: String, expected: Map<String, Any?>, got: Prediction) {
        assertEquals("$where class", expected["class_id"].asInt(), got.classId)
        assertEquals("$where view", expected["view"], got.view)
        assertEquals("$where frame", expected["frame_index"].asInt(), got.frameIndex)
        assertEquals("$where time", expected["time_s"].asDouble(), got.timeS, 1e-12)
        assertEquals("$where uncertain", expected["uncertain"], got.uncertain)
        assertEquals("$where confidence", expected["confidence"].asDouble(), got.confidence, 1e-5)
        assertClose("$where probabilities", expected["probabilities"].asDoubles(), got.probabilities, 1e-5)
        expected["windows"]?.let { assertEquals("$where windows", it.asInt(), got.windows) }
    }

    /** Replay every scenario frame by frame; returns how many there were. */
    fun checkScenarios(): Int {
        val scenarios = golden["scenarios"].asList().map { it.asMap() }
        for (sc in scenarios) {
            val name = sc["name"] as String
            val opts = sc["options"].asMap()
            val stream = StreamingClassifier(model(), info, hop = opts["hop"].asInt(), sector = choice(opts["sector"]),
                refresh = opts["refresh"] as? Boolean ?: true, sectorFrames = opts["sector_frames"]?.asInt() ?: 16,
                changeThreshold = opts["change_threshold"]?.asDouble() ?: 10.0, fps = opts["fps"]?.asDouble() ?: 30.0)
            val frames = sc["segments"].asList().flatMap { seg -> pixels(seg.asList()).let { f -> (0 until f.t).map { f.slice(it, it + 1) } } }
            val events = sc["events"].asList().map { it.asMap() }
            assertEquals(events.size, frames.size)
            for ((i, ev) in events.withIndex()) {
                val where = "$name frame $i"
                val pred = stream.push(frames[i])
                assertEquals("$where sector updates", ev["sector_updates"].asInt(), stream.sectorUpdates)
                assertEquals("$where sector method", ev["sector_method"], stream.currentSector?.method)
                assertEquals("$where sector bbox", ev["sector_bbox"]?.asList()?.map { it.asInt() }, stream.currentSector?.bbox?.toList())
                assertClose("$where feature", ev["feature"].asDoubles(), stream.lastFeature!!.map { it.toDouble() }.toDoubleArray(), 1e-5)
                val want = ev["prediction"]
                if (want == null) assertNull(where, pred) else checkPrediction(where, want.asMap(), pred!!)
            }
        }
        return scenarios.size
    }

    /** predictWindows and predict on every whole-clip case; returns how many there were. */
    fun checkClipCases(): Int {
        val cases = golden["clip_cases"].asList().map { it.asMap() }
        for (case in cases) {
            val name = case["name"] as String
            val clf = ClipClassifier(model(), info)
            val frames = pixels(case["clip"].asList())
            val hop = case["hop"].asInt()
            val fps = case["fps"].asDouble()
            val windows = clf.predictWindows(frames, hop, fps, choice(case["sector"]))
            val want = case["windows"].asList().map { it.asMap() }
            assertEquals("$name windows", want.size, windows.size)
            want.zip(windows).forEachIndexed { i, (w, g) -> checkPrediction("$name window $i", w, g) }
            checkPrediction("$name clip", case["clip_prediction"].asMap(), clf.predict(frames, hop, fps, choice(case["sector"])))
        }
        return cases.size
    }
}
