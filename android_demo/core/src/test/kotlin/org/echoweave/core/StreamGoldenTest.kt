package org.echoweave.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * The streaming and whole-clip classifiers against edge/classifier.py, with the golden set's
 * fixed linear model (written out by make_golden.py) standing in for the exported network:
 * every feature, sector update and prediction of every pushed frame is compared.
 */
class StreamGoldenTest {
    private val set = StreamGolden("stream/cases.json")
    private val info = set.info
    private val clips = set.clips
    private val givenMask = set.givenMask

    @Test
    fun everyScenarioMatchesPythonFrameByFrame() {
        assertEquals(9, set.checkScenarios())
    }

    @Test
    fun wholeClipPredictionsMatchPython() {
        assertEquals(4, set.checkClipCases())
    }

    @Test
    fun oneBackbonePassPerFrameAfterTheSectorIsKnown() {
        val model = set.model()
        val stream = StreamingClassifier(model, info, sector = SectorChoice.Auto, sectorFrames = 6)
        val clip = clips.getValue("main")
        for (i in 0 until 12) stream.push(clip.slice(i, i + 1))
        // 12 frames + re-embedding the T = 4 buffered frames when the sector is found on frame 6.
        assertEquals(12 + 4, model.calls)
        assertTrue(stream.currentSector!!.fromMotion)
    }

    @Test
    fun badFramesLeaveTheStreamUnchanged() {
        val stream = StreamingClassifier(set.model(), info, sector = SectorChoice.Given(givenMask))
        val clip = clips.getValue("main")
        stream.push(clip.slice(0, 1))
        assertThrows(StreamInputException::class.java) { stream.push(clip.slice(0, 2)) }
        assertThrows(StreamInputException::class.java) { stream.push(clip.slice(1, 2), Double.NaN) }
        assertEquals(1, stream.framesSeen)
        val fresh = StreamingClassifier(set.model(), info, sector = SectorChoice.Given(givenMask))
        val e = assertThrows(StreamInputException::class.java) { fresh.push(clips.getValue("wide").slice(0, 1)) }
        assertTrue(e.message!!, e.message!!.contains("does not match the given sector mask"))
        assertArrayEquals(intArrayOf(4, 32, 6, 40), givenMask.bbox)
    }
}
