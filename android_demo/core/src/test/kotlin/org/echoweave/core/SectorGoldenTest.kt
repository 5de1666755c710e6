package org.echoweave.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

/** estimate_sector / apply_sector of edge/sector.py, reproduced exactly (masks, boxes, methods, pixels). */
class SectorGoldenTest {
    private val cases = Golden.json("sector/cases.json")["cases"].asList().map { it.asMap() }

    @Test
    fun temporalStdAndPercentileMatchNumpy() {
        for (case in cases.filter { "std" in it }) {
            val gray = rgbToGray(Golden.npy(case["input"] as String).frames())
            val std = temporalStd(gray)
            val expected = Golden.npy(case["std"] as String).floats()
            for (i in expected.indices) assertEquals("${case["name"]} std[$i]", expected[i].toRawBits(), std[i].toRawBits())
            assertEquals(case["percentile25"].asDouble(), percentileLinear(std, 25.0).toDouble(), 0.0)
        }
    }

    @Test
    fun masksBoxesMethodsAndPixelsMatchPython() {
        assertTrue(cases.map { it["method"] }.toSet().containsAll(listOf(SECTOR_MOTION, SECTOR_BRIGHTNESS, SECTOR_WHOLE_IMAGE)))
        for (case in cases) {
            val name = case["name"] as String
            val frames = Golden.npy(case["input"] as String).frames()
            val kw = case["kwargs"].asMap()
            val sector = estimateSector(frames, threshold = kw["threshold"]?.asDouble(), smooth = kw["smooth"]?.let { it.asInt() },
                minFraction = kw["min_fraction"]?.asDouble() ?: 0.05)
            val mask = Golden.npy(case["mask"] as String).ints()
            val got = IntArray(sector.mask.size) { if (sector.mask[it]) 1 else 0 }
            assertEquals("$name: mask pixels that differ", 0, mask.indices.count { mask[it] != got[it] })
            assertEquals("$name: method", case["method"], sector.method)
            assertArrayEquals("$name: bbox", case["bbox"].asList().map { it.asInt() }.toIntArray(), sector.bbox)
            val applied = Golden.npy(case["applied"] as String)
            val out = applySector(frames, sector)
            assertArrayEquals("$name: applied pixels", applied.bytes, out.data)
            assertEquals("$name: applied shape", applied.shape.toList(), listOfNotNull(out.t, out.h, out.w, out.channels.takeIf { it == 3 }))
        }
    }

    @Test
    fun largestComponentPrefersFirstSeenOnTie() {
        // Two 2x2 blobs of equal size: Python keeps the one whose root was seen first (top-left).
        val m = BooleanArray(5 * 6)
        for ((y, x) in listOf(0 to 0, 0 to 1, 1 to 0, 1 to 1, 3 to 4, 3 to 5, 4 to 4, 4 to 5)) m[y * 6 + x] = true
        val out = largestComponent(m, 5, 6)
        assertTrue(out[0] && out[7] && !out[3 * 6 + 4])
    }
}
