package org.echoweave.core

import kotlin.math.abs
import kotlin.math.max
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/**
 * Evidential fusion (issue 14) against edge/evidential.py and the fusion parts of
 * edge/classifier.py, with the fixtures of tests/golden/make_golden_evidential.py (test
 * resources under /golden_evidential). Float64 inputs given by the fixtures agree to 1e-9; where
 * the golden linear model is in the loop (its float32 outputs may differ in the last bit), to 1e-5.
 */
class EvidentialGoldenTest {
    private object Fixtures {
        fun bytes(name: String): ByteArray =
            EvidentialGoldenTest::class.java.getResourceAsStream("/golden_evidential/$name")?.use { it.readBytes() }
                ?: error("golden file $name is not on the test classpath (run tests/golden/make_golden_evidential.py)")

        fun json(name: String): Map<String, Any?> = Json.parse(String(bytes(name), Charsets.UTF_8), name).asMap()

        fun npy(name: String): Npy = Npy.parse(bytes(name), name)
    }

    private fun close(what: String, expected: Double, actual: Double, tol: Double = 1e-9) {
        if (!(abs(expected - actual) <= tol * max(1.0, abs(expected)))) fail("$what: expected $expected, got $actual")
    }

    private fun fusionOf(v: Any?): FusionSpec? = v?.asMap()?.let { FusionSpec.fromJson(it) }

    private fun rows(v: Any?): List<DoubleArray> = v.asList().map { it.asDoubles() }

    @Test
    fun softplusIsNumpysLogaddexp() {
        val g = Fixtures.json("softplus.json")
        val xs = g["x"].asDoubles()
        val want = g["softplus"].asDoubles()
        assertTrue(xs.size > 40)
        for (i in xs.indices) {
            val got = Evidential.softplus(xs[i])
            assertTrue("softplus(${xs[i]}) = $got is not finite", got.isFinite())
            close("softplus(${xs[i]})", want[i], got)
        }
        assertEquals(0.6931471805599453, Evidential.softplus(0.0), 0.0)
        assertEquals(1e300, Evidential.softplus(1e300), 0.0)  // no overflow
        assertEquals(0.0, Evidential.softplus(-1e300), 0.0)
    }

    @Test
    fun fuseAndTheScaledUncertaintyMatchPython() {
        val cases = Fixtures.json("fuse.json")["cases"].asList().map { it.asMap() }
        assertTrue(cases.size >= 10)
        for (case in cases) {
            val name = case["name"] as String
            val logits = rows(case["logits"])
            val prior = case["prior"].asDouble()
            val fused = Evidential.fuse(logits, prior)
            assertEquals("$name class", case["class_id"].asInt(), fused.classId)
            assertClose("$name probabilities", case["probabilities"].asDoubles(), fused.probabilities, 1e-9)
            close("$name uncertainty K/S", case["uncertainty"].asDouble(), fused.uncertainty)
            val (probs, scaled) = Evidential.scaled(logits, prior)
            assertClose("$name scaled probabilities", case["probabilities"].asDoubles(), probs, 1e-9)
            close("$name scaled uncertainty", case["scaled_uncertainty"].asDouble(), scaled)
            assertTrue("$name: scaled uncertainty $scaled not in (0, 1]", scaled > 0 && scaled <= 1.0)
        }
        val capped = cases.single { it["name"] == "ten_clips_no_evidence_cap" }
        assertEquals(1.0, Evidential.scaled(rows(capped["logits"]), capped["prior"].asDouble()).second, 0.0)
    }

    @Test
    fun fuseRejectsWhatPythonRejects() {
        assertThrows(IllegalArgumentException::class.java) { Evidential.fuse(emptyList()) }
        assertThrows(IllegalArgumentException::class.java) { Evidential.fuse(listOf(DoubleArray(0))) }
        assertThrows(IllegalArgumentException::class.java) { Evidential.fuse(listOf(doubleArrayOf(1.0, 2.0), doubleArrayOf(1.0))) }
        assertThrows(IllegalArgumentException::class.java) { Evidential.fuse(listOf(doubleArrayOf(1.0, Double.NaN))) }
        assertThrows(IllegalArgumentException::class.java) { Evidential.fuse(listOf(doubleArrayOf(Double.POSITIVE_INFINITY))) }
        assertThrows(IllegalArgumentException::class.java) { Evidential.fuse(listOf(doubleArrayOf(1.0)), 0.0) }
        assertThrows(IllegalArgumentException::class.java) { Evidential.keyClipStarts(0, 21) }
        assertThrows(IllegalArgumentException::class.java) { Evidential.keyClipStarts(10, 21, 0) }
        assertThrows(IllegalArgumentException::class.java) { FusionSpec(prior = 0.0) }
        assertThrows(IllegalArgumentException::class.java) { FusionSpec(keyClips = 0) }
    }

    @Test
    fun keyClipStartsRoundHalfToEvenLikeNumpy() {
        val cases = Fixtures.json("key_clip_starts.json")["cases"].asList().map { it.asList() }
        assertTrue(cases.size > 400)
        var halfTies = 0
        for (c in cases) {
            val (n, span, count) = Triple(c[0].asInt(), c[1].asInt(), c[2].asInt())
            val want = c[3].asList().map { it.asInt() }.toIntArray()
            assertArrayEquals("key_clip_starts($n, $span, $count)", want, Evidential.keyClipStarts(n, span, count))
            val stop = maxOf(0, n - span)
            if (count > 1 && (1 until count).any { i -> (i * (stop.toDouble() / (count - 1))).let { it - Math.floor(it) == 0.5 } }) halfTies++
        }
        assertTrue("only $halfTies cases with an exact .5", halfTies > 30)
        assertArrayEquals(intArrayOf(0, 2, 5), Evidential.keyClipStarts(6, 1, 3))  // 2.5 -> 2
        assertArrayEquals(intArrayOf(0, 2, 3, 4, 6, 8, 9), Evidential.keyClipStarts(14, 5, 7))  // 1.5 -> 2, 4.5 -> 4, 7.5 -> 8
        assertArrayEquals(IntArray(10), Evidential.keyClipStarts(5, 21))  // shorter than the span
    }

    @Test
    fun combineWindowsMatchesPython() {
        val g = Fixtures.json("combine.json")
        val names = g["classes"].asList().map { it as String }
        val thr = g["uncertain_threshold"].asDouble()
        val cases = g["cases"].asList().map { it.asMap() }
        assertEquals(9, cases.size)
        for (case in cases) {
            val name = case["name"] as String
            val fusion = fusionOf(case["fusion"])
            val logits = rows(case["logits"])
            val windows = case["windows"].asList().map { it.asMap() }.mapIndexed { i, w ->
                val p = makePrediction(w["probabilities"].asDoubles(), names, thr, w["frame_index"].asInt(), w["time_s"].asDouble(), 0.0)
                val u = fusion?.let { Evidential.scaled(listOf(logits[i]), it.prior).second }
                if (fusion == null) assertNull(w["uncertainty"]) else close("$name window $i uncertainty", w["uncertainty"].asDouble(), u!!)
                p.copy(logits = logits[i], uncertainty = u)
            }
            case["keys"]?.let { keys ->
                assertArrayEquals("$name keys", keys.asList().map { it.asInt() }.toIntArray(), Evidential.keyWindows(windows.size, fusion!!.keyClips))
            }
            val got = combineWindows(windows, names, thr, fusion, 0.0)
            checkPrediction(name, case["combined"].asMap(), got, 1e-9)
        }
        val mean = cases.single { it["name"] == "no_fusion_mean" }
        assertNull(mean["combined"].asMap()["uncertainty"])
    }

    @Test
    fun streamHistoryFusesWindowsOneSpanApart() {
        val cases = Fixtures.json("history.json")["cases"].asList().map { it.asMap() }
        assertEquals(7, cases.size)
        for (case in cases) {
            val name = case["name"] as String
            val fusion = fusionOf(case["fusion"])!!
            val span = case["span"].asInt()
            assertEquals("$name span", span, ModelInfo(listOf("a"), case["frames"].asInt(), PreprocessSpec(resize = 20, crop = 16), 0.5,
                frameStride = case["frame_stride"].asInt(), fusion = fusion).span)
            val history = FusedWindows(span, case["hop"].asInt(), fusion)
            val clearAt = case["clear_at"]?.asInt()
            val want = case["uncertainty"].asDoubles()
            rows(case["logits"]).forEachIndexed { i, z ->
                if (i == clearAt) history.clear()
                close("$name step $i", want[i], history.add(z))
            }
        }
    }

    @Test
    fun manifestFusionEntryIsParsedAndCheckedLikePython() {
        val g = Fixtures.json("manifest.json")
        val base = g["base"].asMap()
        val cases = g["cases"].asList().map { it.asMap() }
        assertEquals(15, cases.size)
        for (case in cases) {
            val name = case["name"] as String
            val edit = case["manifest"].asMap()
            val m = if ("fusion" in edit) base + ("fusion" to edit["fusion"]) else base
            val text = Json.write(m)
            if (case["valid"] == true) {
                val parsed = Manifest.parse(text)
                val want = fusionOf(case["fusion"])
                assertEquals(name, want, parsed.fusion)
                assertEquals(name, want, ModelInfo.from(parsed).fusion)
            } else {
                val e = assertThrows(name, ManifestException::class.java) { Manifest.parse(text) }
                assertEquals(name, case["error"], e.message)
            }
        }
        val stfm = Manifest.parse(Json.write(base + ("fusion" to cases.single { it["name"] == "stfm" }["fusion"])))
        assertEquals(FusionSpec("evidential", 0.8, 10), stfm.fusion)
        assertNull(Manifest.parse(Json.write(base)).fusion)
    }

    // ---- the golden linear model in the loop ------------------------------------------------

    private val models = Fixtures.json("model_cases.json")

    /** The linear model of make_golden.py: float64 sums rounded to float32, as its numpy twin. */
    private class LinearModel(m: Map<String, Any?>) : FrameModel {
        private val ew = Fixtures.npy(m["embed_w"] as String)
        private val ewf = ew.floats()
        private val eb = Fixtures.npy(m["embed_b"] as String).floats()
        private val hw = Fixtures.npy(m["head_w"] as String)
        private val hwf = hw.floats()
        private val hb = Fixtures.npy(m["head_b"] as String).floats()
        override val runtimeName = "golden-linear"

        private fun affine(w: FloatArray, rows: Int, b: FloatArray, x: FloatArray): FloatArray {
            val n = x.size
            check(w.size == rows * n) { "weights ${w.size} for input $n" }
            return FloatArray(rows) { r -> var s = 0.0; for (i in 0 until n) s += x[i].toDouble() * w[r * n + i]; (s + b[r]).toFloat() }
        }

        override fun embedFrame(frame: FloatTensor) = affine(ewf, ew.shape[0], eb, frame.data)
        override fun classifyWindow(features: FloatTensor) = affine(hwf, hw.shape[0], hb, features.data)
    }

    private fun checkPrediction(where: String, want: Map<String, Any?>, got: Prediction, tol: Double) {
        assertEquals("$where class", want["class_id"].asInt(), got.classId)
        assertEquals("$where view", want["view"], got.view)
        assertEquals("$where frame", want["frame_index"].asInt(), got.frameIndex)
        assertEquals("$where time", want["time_s"].asDouble(), got.timeS, 1e-12)
        assertEquals("$where windows", want["windows"].asInt(), got.windows)
        assertEquals("$where uncertain", want["uncertain"], got.uncertain)
        close("$where confidence", want["confidence"].asDouble(), got.confidence, tol)
        assertClose("$where probabilities", want["probabilities"].asDoubles(), got.probabilities, tol)
        val u = want["uncertainty"]
        if (u == null) assertNull("$where uncertainty", got.uncertainty) else close("$where uncertainty", u.asDouble(), got.uncertainty!!, tol)
        want["logits"]?.let { assertClose("$where logits", it.asDoubles(), got.logits!!, 1e-5) }
    }

    @Test
    fun fusionModelClipsAndStreamsMatchPython() {
        val names = models["classes"].asList().map { it as String }
        val thr = models["uncertain_threshold"].asDouble()
        val spec = PreprocessSpec.fromJson(models["spec"].asMap())
        val clips = models["clips"].asMap().mapValues { Fixtures.npy(it.value as String).frames() }
        fun pixels(ref: List<Any?>) = clips.getValue(ref[0] as String).slice(ref[1].asInt(), ref[2].asInt())
        fun choice(s: Any?) = if (s == "auto") SectorChoice.Auto else SectorChoice.Off
        var clipCount = 0
        var predictions = 0
        for (case in models["cases"].asList().map { it.asMap() }) {
            val modelName = case["model"] as String
            val m = models["models"].asMap()[modelName].asMap()
            val fusion = fusionOf(m["fusion"])!!
            val info = ModelInfo(names, m["frames"].asInt(), spec, thr, frameStride = m["frame_stride"].asInt(), fusion = fusion)
            assertEquals(m["span"].asInt(), info.span)
            for (cc in case["clip_cases"].asList().map { it.asMap() }) {
                val where = "$modelName ${cc["clip"]} ${cc["sector"]}"
                val frames = pixels(cc["clip"].asList())
                val fps = cc["fps"].asDouble()
                val clf = ClipClassifier(LinearModel(m), info)
                val starts = Evidential.keyClipStarts(frames.t, info.span, fusion.keyClips)
                assertEquals("$where key starts", cc["key_starts"].asList().map { it.asInt() }, starts.toList())
                val windows = clf.predictWindows(frames, fps = fps, sector = choice(cc["sector"]), starts = starts.toList())
                val want = cc["windows"].asList().map { it.asMap() }
                assertEquals(want.size, windows.size)
                want.zip(windows).forEachIndexed { i, (w, g) -> checkPrediction("$where key window $i", w, g, 1e-5) }
                val clip = cc["clip_prediction"].asMap()
                checkPrediction("$where clip", clip, clf.predict(frames, hop = 3, fps = fps, sector = choice(cc["sector"])), 1e-5)
                // the fusion itself, on the Python windows' logits: to 1e-9
                val (probs, u) = Evidential.scaled(want.map { it["logits"].asDoubles() }, fusion.prior)
                assertClose("$where clip fusion of the Python logits", clip["probabilities"].asDoubles(), probs, 1e-9)
                close("$where clip uncertainty from the Python logits", clip["uncertainty"].asDouble(), u)
                val sliding = clf.predictWindows(frames, hop = 2, fps = fps, sector = choice(cc["sector"]))
                assertEquals("$where hop-2 windows", cc["hop2_windows"].asInt(), sliding.size)
                checkPrediction("$where combined hop-2 windows", cc["hop2_combined"].asMap(), clf.combineWindows(sliding), 1e-5)
                clipCount++
            }
            for (sc in case["streams"].asList().map { it.asMap() }) {
                val opts = sc["options"].asMap()
                val where = "$modelName stream $opts ${sc["segments"]}"
                val hop = opts["hop"].asInt()
                val stream = StreamingClassifier(LinearModel(m), info, hop = hop, sector = choice(opts["sector"]),
                    sectorFrames = opts["sector_frames"]?.asInt() ?: 16, fps = opts["fps"]?.asDouble() ?: 30.0)
                val history = FusedWindows(info.span, hop, fusion)  // fed the Python logits: to 1e-9
                val frames = sc["segments"].asList().flatMap { seg -> pixels(seg.asList()).let { f -> (0 until f.t).map { f.slice(it, it + 1) } } }
                val events = sc["events"].asList()
                assertEquals(events.size, frames.size)
                var shape: Pair<Int, Int>? = null
                for ((i, ev) in events.withIndex()) {
                    val size = frames[i].h to frames[i].w
                    if (shape != null && size != shape) history.clear()
                    shape = size
                    val pred = stream.push(frames[i])
                    if (ev == null) { assertNull("$where frame $i", pred); continue }
                    checkPrediction("$where frame $i", ev.asMap(), pred!!, 1e-5)
                    close("$where frame $i from the Python logits", ev.asMap()["uncertainty"].asDouble(), history.add(ev.asMap()["logits"].asDoubles()))
                    predictions++
                }
            }
        }
        assertEquals(8, clipCount)
        assertEquals(83, predictions)
    }

    @Test
    fun modelsWithoutFusionReportNoUncertainty() {
        val names = models["classes"].asList().map { it as String }
        val m = models["models"].asMap()["t4"].asMap()
        val info = ModelInfo(names, 4, PreprocessSpec.fromJson(models["spec"].asMap()), models["uncertain_threshold"].asDouble())
        val clip = Fixtures.npy(models["clips"].asMap()["main"] as String).frames().slice(0, 12)
        val clf = ClipClassifier(LinearModel(m), info)
        val windows = clf.predictWindows(clip, sector = SectorChoice.Off)
        assertEquals(9, windows.size)
        assertTrue(windows.all { it.uncertainty == null && it.logits != null })
        val whole = clf.predict(clip, sector = SectorChoice.Off)
        assertNull(whole.uncertainty)
        assertEquals(9, whole.windows)
        val mean = DoubleArray(names.size) { c -> windows.sumOf { it.probabilities[c] } / windows.size }
        assertArrayEquals(mean, whole.probabilities, 0.0)
        val stream = StreamingClassifier(LinearModel(m), info, sector = SectorChoice.Off)
        val preds = (0 until clip.t).mapNotNull { stream.push(clip.slice(it, it + 1)) }
        assertEquals(9, preds.size)
        assertTrue(preds.all { it.uncertainty == null })
    }
}
