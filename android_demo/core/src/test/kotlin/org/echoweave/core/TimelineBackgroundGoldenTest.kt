package org.echoweave.core

import org.echoweave.core.TimelineGoldenTest.Companion.NED12
import org.echoweave.core.TimelineGoldenTest.Companion.assertSameJson
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * The background rule of edge/timeline.py (uncertain windows and, with a view-change window,
 * windows whose Jensen-Shannon view change is above the threshold become "background"), its
 * view_change values, and scan_workflow, against timeline/background_cases.json.
 */
class TimelineBackgroundGoldenTest {
    private val golden = Golden.json("timeline/background_cases.json")
    private val threshold = golden["uncertain_threshold"].asDouble()
    private val sequences = golden["sequences"].asMap()

    private fun times(name: String) = sequences[name].asMap()["times"].asDoubles()

    private fun probabilities(name: String) = sequences[name].asMap()["probabilities"].asList().map { it.asDoubles() }

    /** The sequence as window predictions: argmax view, its probability, uncertain below the manifest threshold. */
    private fun predictions(name: String): List<Prediction> {
        val t = times(name)
        return probabilities(name).mapIndexed { i, p -> makePrediction(p, NED12.subList(0, p.size), threshold, i, t[i], 0.0) }
    }

    private fun cases() = golden["cases"].asList().map { it.asMap() }

    @Test
    fun viewChangeMatchesPython() {
        var compared = 0
        for ((name, seq) in sequences) {
            for ((half, expected) in seq.asMap()["view_change"].asMap()) {
                val got = viewChange(times(name), probabilities(name), half.toDouble())
                assertClose("$name view_change($half)", expected.asDoubles(), got, 1e-12)
                compared++
            }
        }
        assertEquals(6, compared)
        // Exact values where the arithmetic is exact: a steady stretch changes by 0, disjoint beliefs by ln 2.
        val cut = viewChange(times("one_hot_cut"), probabilities("one_hot_cut"), 1.0)
        assertEquals(Math.log(2.0), cut.max(), 0.0)
        assertTrue(cut.count { it == 0.0 } > 4)
        assertTrue(viewChange(times("dyadic"), probabilities("dyadic"), 1.0).count { it == 0.0 } > 10)
    }

    @Test
    fun backgroundTimelinesMatchPython() {
        val cases = cases()
        assertEquals(15, cases.size)
        for (case in cases) {
            val st = case["settings"].asMap()
            val where = "${case["name"]} ${Json.write(st)}"
            val preds = predictions(case["name"] as String)
            // The golden uncertain flag is Python's (confidence < threshold); the port's makePrediction agrees.
            val tl = buildTimeline(preds, NED12, smooth = st["smooth"].asInt(), minSegmentS = st["min_segment_s"].asDouble(),
                uncertainAs = st["uncertain_as"] as String?, viewChangeS = st["view_change_s"].asDouble(),
                viewChangeThreshold = st["view_change_threshold"].asDouble())
            assertSameJson(where, case["expected"], Json.parse(tl.toJson()))
            assertEquals("$where per_view order", case["per_view_order"], tl.stats.perView.keys.toList())
            assertSameJson("$where workflow", case["workflow"], Json.parse(Json.write(tl.workflow.toMap())))
            assertEquals("$where workflow per_view order", case["per_view_order"], tl.workflow.perView.keys.toList())
        }
        assertTrue(cases.any { c -> c["expected"].asMap()["segments"].asList().any { it.asMap()["view"] == BACKGROUND } })
    }

    @Test
    fun thresholdIsStrict() {
        // 1e-9 below a window's view change marks it, 1e-9 above does not (Python picked a window far from the others).
        val boundary = golden["boundary"].asMap()
        val pick = boundary["window"].asInt()
        val v = boundary["view_change"].asDouble()
        val change = viewChange(times("probe_scan"), probabilities("probe_scan"), 1.0)
        assertTrue(change[pick] > v - 1e-9)
        assertFalse(change[pick] > v + 1e-9)
        // At exactly ln 2 nothing is background (the cut's ln 2 is not above it); just below ln 2 the cut is.
        val cut = predictions("one_hot_cut")
        val atMax = buildTimeline(cut, NED12, smooth = 1, minSegmentS = 0.0, uncertainAs = BACKGROUND, viewChangeS = 1.0,
            viewChangeThreshold = Math.log(2.0))
        assertTrue(atMax.segments.none { it.isBackground })
        val below = buildTimeline(cut, NED12, smooth = 1, minSegmentS = 0.0, uncertainAs = BACKGROUND, viewChangeS = 1.0,
            viewChangeThreshold = 0.69)
        assertEquals(1, below.segments.count { it.isBackground })
    }

    @Test
    fun viewChangeNeedsABackgroundLabel() {
        val e = assertThrows(IllegalArgumentException::class.java) {
            buildTimeline(listOf(Prediction("A", 0, doubleArrayOf(1.0), 1.0, false, 0, 0.0, 0.0)), viewChangeS = 1.0)
        }
        assertEquals(golden["view_change_error"], e.message)
    }

    @Test
    fun scanWorkflowOfGivenSegmentsMatchesPython() {
        val cases = golden["workflow_cases"].asList().map { it.asMap() }
        assertEquals(4, cases.size)
        for (case in cases) {
            val segments = case["segments"].asList().map { it.asMap() }.map {
                Segment(it["view"] as String, it["class_id"].asInt(), it["start_s"].asDouble(), it["end_s"].asDouble(),
                    it["windows"].asInt(), it["mean_confidence"].asDouble())
            }
            val wf = scanWorkflow(segments)
            assertSameJson("${case["name"]}", case["workflow"], Json.parse(Json.write(wf.toMap())))
            assertEquals("${case["name"]} per_view order", case["per_view_order"], wf.perView.keys.toList())
        }
    }
}
