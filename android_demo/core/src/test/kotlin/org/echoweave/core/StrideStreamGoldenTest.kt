package org.echoweave.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Test

/**
 * A model with frame stride 2 (T = 3, a window spans 5 frames) against edge/classifier.py:
 * the stream's ring buffer holds 5 features and the head gets every 2nd; whole clips slide
 * 5-frame windows and pad clips shorter than 5 (stream/stride2_cases.json from make_golden.py).
 */
class StrideStreamGoldenTest {
    private val set = StreamGolden("stream/stride2_cases.json")

    @Test
    fun theGoldenModelHasAStride() {
        assertEquals(3, set.info.frames)
        assertEquals(2, set.info.frameStride)
        assertEquals(set.golden["span"].asInt(), set.info.span)
        assertEquals(5, set.info.span)
    }

    @Test
    fun everyStridedScenarioMatchesPythonFrameByFrame() {
        assertEquals(5, set.checkScenarios())
    }

    @Test
    fun stridedWholeClipPredictionsMatchPython() {
        assertEquals(6, set.checkClipCases())
    }

    @Test
    fun theFirstPredictionComesWithTheFifthFrameThenEveryFrame() {
        val model = set.model()
        val stream = StreamingClassifier(model, set.info, sector = SectorChoice.Off)
        val clip = set.clips.getValue("main")
        val got = (0 until 8).map { stream.push(clip.slice(it, it + 1)) }
        for (i in 0 until 4) assertNull("frame $i", got[i])
        assertEquals((4 until 8).toList(), got.drop(4).map { it!!.frameIndex })
        assertEquals(8, model.calls)  // one backbone pass per frame, none repeated for the stride
        assertEquals(4, model.windowsSeen)
    }

    @Test
    fun windowStartsCoverTheSpan() {
        val clf = ClipClassifier(set.model(), set.info)
        assertEquals(listOf(0, 1, 2, 3, 4, 5), clf.windowStarts(10, 1))
        assertEquals(listOf(0, 3), clf.windowStarts(10, 3))
        assertEquals(listOf(0), clf.windowStarts(5, 1))
        assertEquals(listOf(0), clf.windowStarts(4, 1))  // shorter than the span: one padded window
        assertEquals(listOf(10, 12, 14), set.info.windowOf((0 until 20).toList(), 10))
    }
}
