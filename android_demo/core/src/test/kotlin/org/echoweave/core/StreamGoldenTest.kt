package org.echoweave.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * The streaming and whole-clip classifiers against edge/classifier.py, with the golden set's
 * fixed linear model (written out by make_golden.py) standing in for the exported network:
 * every feature, sector update and prediction of every pushed frame is compared.
 */
class StreamGoldenTest {
    private val golden = Golden.json("stream/cases.json")
    private val info = ModelInfo(golden["classes"].asList().map { it as String }, golden["frames"].asInt(),
        PreprocessSpec.fromJson(golden["spec"].asMap()), golden["uncertain_threshold"].asDouble())
    private val clips = golden["clips"].asMap().mapValues { Golden.npy(it.value as String).frames() }
    private val givenMask = Golden.npy(golden["given_mask"] as String).let { npy ->
        sectorFromMask(BooleanArray(npy.size) { npy.bytes[it].toInt() != 0 }, npy.shape[0], npy.shape[1])
    }

    /** embed = W_e x + b_e, head = W_h f + b_h, in float64 rounded to float32 like the Python twin. */
    private class LinearModel(golden: Map<String, Any?>) : FrameModel {
        private val m = golden["model"].asMap()
        private val ew = Golden.npy(m["embed_w"] as String)
        private val eb = Golden.npy(m["embed_b"] as String).floats()
        private val hw = Golden.npy(m["head_w"] as String)
        private val hb = Golden.npy(m["head_b"] as String).floats()
        private val ewf = ew.floats()
        private val hwf = hw.floats()
        override val runtimeName = "golden-linear"
        var calls = 0

        private fun affine(w: FloatArray, rows: Int, b: FloatArray, x: FloatArray): FloatArray {
            val n = x.size
            check(w.size == rows * n) { "weights ${w.size} for input $n" }
            return FloatArray(rows) { r -> var s = 0.0; for (i in 0 until n) s += x[i].toDouble() * w[r * n + i]; (s + b[r]).toFloat() }
        }

        override fun embedFrame(frame: FloatTensor): FloatArray { calls++; return affine(ewf, ew.shape[0], eb, frame.data) }
        override fun classifyWindow(features: FloatTensor): FloatArray = affine(hwf, hw.shape[0], hb, features.data)
    }

    private fun pixels(ref: List<Any?>): Frames {
        val clip = clips.getValue(ref[0] as String)
        return clip.slice(ref[1].asInt(), ref[2].asInt())
    }

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

    @Test
    fun everyScenarioMatchesPythonFrameByFrame() {
        val scenarios = golden["scenarios"].asList().map { it.asMap() }
        assertEquals(9, scenarios.size)
        for (sc in scenarios) {
            val name = sc["name"] as String
            val opts = sc["options"].asMap()
            val choice = when (opts["sector"]) { "auto" -> SectorChoice.Auto; "none" -> SectorChoice.Off; else -> SectorChoice.Given(givenMask) }
            val stream = StreamingClassifier(LinearModel(golden), info, hop = opts["hop"].asInt(), sector = choice,
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
    }

    @Test
    fun wholeClipPredictionsMatchPython() {
        for (case in golden["clip_cases"].asList().map { it.asMap() }) {
            val name = case["name"] as String
            val choice = when (case["sector"]) { "auto" -> SectorChoice.Auto; "none" -> SectorChoice.Off; else -> SectorChoice.Given(givenMask) }
            val clf = ClipClassifier(LinearModel(golden), info)
            val frames = pixels(case["clip"].asList())
            val hop = case["hop"].asInt()
            val fps = case["fps"].asDouble()
            val windows = clf.predictWindows(frames, hop, fps, choice)
            val want = case["windows"].asList().map { it.asMap() }
            assertEquals("$name windows", want.size, windows.size)
            want.zip(windows).forEachIndexed { i, (w, g) -> checkPrediction("$name window $i", w, g) }
            checkPrediction("$name clip", case["clip_prediction"].asMap(), clf.predict(frames, hop, fps, choice))
        }
    }

    @Test
    fun oneBackbonePassPerFrameAfterTheSectorIsKnown() {
        val model = LinearModel(golden)
        val stream = StreamingClassifier(model, info, sector = SectorChoice.Auto, sectorFrames = 6)
        val clip = clips.getValue("main")
        for (i in 0 until 12) stream.push(clip.slice(i, i + 1))
        // 12 frames + re-embedding the T = 4 buffered frames when the sector is found on frame 6.
        assertEquals(12 + 4, model.calls)
        assertTrue(stream.currentSector!!.fromMotion)
    }

    @Test
    fun badFramesLeaveTheStreamUnchanged() {
        val stream = StreamingClassifier(LinearModel(golden), info, sector = SectorChoice.Given(givenMask))
        val clip = clips.getValue("main")
        stream.push(clip.slice(0, 1))
        assertThrows(StreamInputException::class.java) { stream.push(clip.slice(0, 2)) }
        assertThrows(StreamInputException::class.java) { stream.push(clip.slice(1, 2), Double.NaN) }
        assertEquals(1, stream.framesSeen)
        val fresh = StreamingClassifier(LinearModel(golden), info, sector = SectorChoice.Given(givenMask))
        val e = assertThrows(StreamInputException::class.java) { fresh.push(clips.getValue("wide").slice(0, 1)) }
        assertTrue(e.message!!, e.message!!.contains("does not match the given sector mask"))
        assertArrayEquals(intArrayOf(4, 32, 6, 40), givenMask.bbox)
    }
}
