package org.echoweave.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

/** Timelines and workflow statistics equal edge/timeline.py's on the same prediction sequences. */
class TimelineGoldenTest {
    private val golden = Golden.json("timeline/cases.json")

    private fun predictions(case: Map<String, Any?>): List<Prediction> {
        val times = case["times"].asDoubles()
        val ids = case["class_ids"].asList().map { it.asInt() }
        val conf = case["confidences"].asDoubles()
        val uncertain = case["uncertain"].asList().map { it as Boolean }
        val evidential = case["uncertainties"]?.asDoubles()  // only the evidential case has them
        return times.indices.map { i ->
            Prediction(NED12[ids[i]], ids[i], DoubleArray(0), conf[i], uncertain[i], i, times[i], 0.0,
                uncertainty = evidential?.get(i))
        }
    }

    @Test
    fun segmentsStatsAndParamsMatchPython() {
        val cases = golden["cases"].asList().map { it.asMap() }
        assertEquals(32, cases.size)
        assertTrue(cases.any { it["uncertainties"] != null && it["expected"].asMap()["uncertainty"] != null })
        for (case in cases) {
            val st = case["settings"].asMap()
            val where = "${case["name"]} ${Json.write(st)}"
            val tl = buildTimeline(predictions(case), if (st["names"] == true) NED12 else null, smooth = st["smooth"].asInt(),
                minSegmentS = st["min_segment_s"].asDouble(), uncertainAs = st["uncertain_as"] as String?)
            assertSameJson(where, case["expected"], Json.parse(tl.toJson()))
            // per_view is ordered by time spent (the golden JSON sorts keys, so the order is stored apart).
            assertEquals("$where per_view order", case["per_view_order"], tl.stats.perView.keys.toList())
            case["workflow"]?.let {
                assertSameJson("$where workflow", it, Json.parse(Json.write(tl.workflow.toMap())))
                assertEquals("$where workflow per_view order", case["per_view_order"], tl.workflow.perView.keys.toList())
                val written = Json.parse(tl.toJson(withWorkflow = true)).asMap()
                assertSameJson("$where write_json", it, written["workflow"])
            }
        }
        assertEquals(16, cases.count { it["workflow"] != null })
    }

    @Test
    fun arraysWithoutPredictionsMatchPython() {
        val cases = golden["array_cases"].asList().map { it.asMap() }
        assertEquals(6, cases.size)
        for (case in cases) {
            val st = case["settings"].asMap()
            val where = "arrays ${case["name"]} ${Json.write(st)}"
            val tl = buildTimeline(case["times"].asDoubles(), case["class_ids"].asList().map { it.asInt() }.toIntArray(),
                case["confidences"].asDoubles(), if (st["names"] == true) NED12 else null, smooth = st["smooth"].asInt(),
                minSegmentS = st["min_segment_s"].asDouble(), uncertainAs = st["uncertain_as"] as String?)
            assertSameJson(where, case["expected"], Json.parse(tl.toJson()))
            assertEquals("$where per_view order", case["per_view_order"], tl.stats.perView.keys.toList())
        }
    }

    @Test
    fun nonIncreasingTimesAreRejected() {
        val p = { t: Double -> Prediction("A", 0, DoubleArray(0), 1.0, false, 0, t, 0.0) }
        val e = assertThrows(IllegalArgumentException::class.java) { buildTimeline(listOf(p(0.0), p(0.0))) }
        assertEquals(golden["non_increasing_error"], e.message)
        val a = assertThrows(IllegalArgumentException::class.java) {
            buildTimeline(doubleArrayOf(0.0, 0.0), intArrayOf(0, 1), doubleArrayOf(1.0, 1.0))
        }
        assertEquals(golden["non_increasing_error"], a.message)
    }

    @Test
    fun perViewTimesSumToTheTotal() {
        val case = golden["cases"].asList().map { it.asMap() }.first { it["name"] == "scan" }
        val tl = buildTimeline(predictions(case), NED12)
        assertEquals(tl.stats.totalS, tl.stats.perView.values.sumOf { it.timeS }, 1e-9)
        assertTrue(tl.stats.transitions == tl.segments.size - 1)
    }

    companion object {
        // NED-12 in class-id order (echoweave.edge.views.NED12); the golden predictions use it.
        val NED12 = listOf("APICAL_5C", "APICAL_4C_LVRV", "APICAL_2C_LV", "APICAL_3C_LV", "PLAX_LV", "PLAX_RV_IN",
            "PLAX_RV_OUT", "PSAX_AV", "PSAX_MV", "PSAX_PAPS", "PSAX_APEX", "APICAL_3C_RV")

        /** [expected] (golden JSON) equals [actual] (the port's JSON): floats to 1e-9 relative, the rest exactly. */
        fun assertSameJson(where: String, expected: Any?, actual: Any?) {
            when {
                expected is Double || actual is Double ->
                    assertEquals(where, expected.asDouble(), actual.asDouble(), 1e-9 * maxOf(1.0, Math.abs(expected.asDouble())))
                expected is Map<*, *> -> {
                    val a = actual.asMap()
                    assertEquals("$where keys", expected.keys.map { it.toString() }.toSet(), a.keys)
                    for ((k, v) in expected) assertSameJson("$where.$k", v, a[k.toString()])
                }
                expected is List<*> -> {
                    val a = actual.asList()
                    assertEquals("$where length", expected.size, a.size)
                    expected.indices.forEach { assertSameJson("$where[$it]", expected[it], a[it]) }
                }
                else -> assertEquals(where, expected, actual)
            }
        }
    }
}
