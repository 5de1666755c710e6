/*
 * One running stream: frames in (from any thread), predictions and latency out (on the main
 * thread). All model work runs on one background thread, so the runtimes, which are not
 * re-entrant, see one call at a time, and the camera analyzer can use the same executor to drop
 * frames while the model is busy.
 */
package org.echoweave.demo

import android.os.Handler
import android.os.Looper
import android.util.Log
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import org.echoweave.core.Frames
import org.echoweave.core.LatencyRecorder
import org.echoweave.core.LatencyStats
import org.echoweave.core.ModelInfo
import org.echoweave.core.Prediction
import org.echoweave.core.SectorChoice
import org.echoweave.core.StreamingClassifier

const val LOG_TAG = "echoweave"

/** Predictions of the current scan, shared with the timeline screen. */
object ScanLog {
    private val items = ArrayList<Prediction>()
    var classNames: List<String> = emptyList()

    @Synchronized fun add(p: Prediction) { items.add(p) }
    @Synchronized fun clear() = items.clear()
    @Synchronized fun predictions(): List<Prediction> = items.toList()
}

/** What the UI shows after each frame. */
data class FrameResult(val frameIndex: Int, val prediction: Prediction?, val frameMs: Double, val latency: LatencyStats?)

class StreamSession(
    model: ClosableFrameModel,
    info: ModelInfo,
    fps: Double,
    private val onResult: (FrameResult) -> Unit,
) : AutoCloseable {
    private val closableModel = model
    private val stream = StreamingClassifier(model, info, hop = 1, sector = SectorChoice.Auto, fps = fps)
    private val latency = LatencyRecorder(capacity = 300)
    private val main = Handler(Looper.getMainLooper())

    /** The single model thread; the camera analyzer runs on it too. */
    val executor: ExecutorService = Executors.newSingleThreadExecutor { r -> Thread(r, "echoweave-model") }

    init {
        ScanLog.clear()
        ScanLog.classNames = info.classNames
    }

    /** Run one frame on the caller's thread (call it from [executor]); returns the result it posted. */
    fun process(frame: Frames, timeS: Double? = null): FrameResult {
        val t0 = System.nanoTime()
        val prediction = stream.push(frame, timeS)
        val ms = (System.nanoTime() - t0) / 1e6  // preprocessing + sector + runtime, as the harness's stream mode
        latency.add(ms)
        prediction?.let(ScanLog::add)
        val stats = latency.stats()
        if (stream.framesSeen % 30 == 0 && stats != null) {
            Log.i(LOG_TAG, "${closableModel.runtimeName} stream latency ${stats.summary()} " +
                "mean=%.2f min=%.2f max=%.2f std=%.2f".format(stats.mean, stats.min, stats.max, stats.std))
        }
        prediction?.let {
            Log.d(LOG_TAG, "frame ${it.frameIndex} view=${it.view} confidence=%.3f uncertain=${it.uncertain}".format(it.confidence))
        }
        val result = FrameResult(stream.framesSeen - 1, prediction, ms, stats)
        main.post { onResult(result) }
        return result
    }

    /** Queue a frame for the model thread. */
    fun submit(frame: Frames, timeS: Double? = null) {
        executor.execute { process(frame, timeS) }
    }

    override fun close() {
        executor.execute { closableModel.close() }
        executor.shutdown()
    }
}
