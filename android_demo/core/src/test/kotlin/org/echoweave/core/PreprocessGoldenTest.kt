package org.echoweave.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test

/** Grayscale, resize weights and the whole preprocessing equal edge/preprocess.py's outputs. */
class PreprocessGoldenTest {
    @Test
    fun lumaMatchesPythonOnRoundingBoundaryTriples() {
        val rgb = Golden.npy("gray/rgb.npy").ints()
        val expected = Golden.npy("gray/expected.npy").ints()
        val got = IntArray(expected.size) { lumaOf(rgb[3 * it], rgb[3 * it + 1], rgb[3 * it + 2]) }
        val wrong = expected.indices.filter { expected[it] != got[it] }
        assertEquals("luma differs for ${wrong.size} of ${expected.size} triples, e.g. ${wrong.take(3).map { rgb.slice(3 * it until 3 * it + 3) }}",
            0, wrong.size)
    }

    @Test
    fun resizeWeightsEqualPythonBitForBit() {
        for (case in Golden.json("resize/cases.json")["cases"].asList().map { it.asMap() }) {
            val nIn = case["in"].asInt()
            val nOut = case["out"].asInt()
            val lo = Golden.npy(case["lo"] as String).ints()
            val bandNpy = Golden.npy(case["band"] as String)
            val band = bandNpy.floats()
            val width = bandNpy.shape[1]
            val expected = FloatArray(nOut * nIn)
            for (i in 0 until nOut) for (k in 0 until width) if (band[i * width + k] != 0f) expected[i * nIn + lo[i] + k] = band[i * width + k]
            val got = resizeWeights(nIn, nOut).dense
            for (i in expected.indices) {
                assertEquals("w($nIn -> $nOut)[${i / nIn}, ${i % nIn}]", expected[i].toRawBits(), got[i].toRawBits())
            }
        }
    }

    @Test
    fun preprocessFramesMatchesPython() {
        for (case in Golden.json("preprocess/cases.json")["cases"].asList().map { it.asMap() }) {
            val spec = PreprocessSpec.fromJson(case["spec"].asMap())
            val expected = Golden.npy(case["expected"] as String)
            val got = preprocessFrames(Golden.npy(case["input"] as String).frames(), spec)
            assertArrayEquals("${case["name"]}: shape", expected.shape, got.shape)
            assertClose(case["name"] as String, expected.floats(), got.data, atol = 1e-6)
        }
    }

    @Test
    fun sizesAndCropOffsetsFollowTorchvision() {
        assertEquals(Pair(309, 232), resizedSize(480, 360, 232))  // portrait: width is shorter
        assertEquals(Pair(232, 309), resizedSize(360, 480, 232))
        assertEquals(Pair(8, 8), resizedSize(5, 5, 8))
        assertEquals(2, centreCropOffset(20, 15))  // 2.5 rounds to even
        assertEquals(4, centreCropOffset(24, 15))  // 4.5 rounds to even
        assertEquals(0, centreCropOffset(15, 15))
    }

    @Test
    fun badInputIsNamed() {
        val e = assertThrows(FrameException::class.java) { Frames(2, 4, 4, 1, ByteArray(10), "clip.mp4") }
        assertEquals("clip.mp4: pixel buffer holds 10 bytes, shape (2, 4, 4, 1) needs 32", e.message)
        assertThrows(IllegalArgumentException::class.java) { PreprocessSpec(resize = 10, crop = 11) }
    }
}
