/*
 * Classify clips and live streams with the two exported methods: a port of Classifier
 * (predict_windows / predict) and StreamingClassifier in edge/classifier.py. Read that module's
 * docstring for the policy; in short:
 *
 *  - Whole clips: every frame is embedded once (`embed_frame`), each window of T features is
 *    classified (`classify_window`), the clip's probabilities are the mean over windows; a clip
 *    shorter than a window repeats its last frame. The sector is estimated from the whole clip.
 *  - A model with frame stride k (manifest `frame_stride`) takes every k-th frame: a window
 *    spans (T - 1) * k + 1 frames of the clip ([ModelInfo.span]) and the head gets every k-th.
 *  - Streams: a ring buffer of the features of the last span frames, one backbone pass per new
 *    frame, a prediction on every frame (or hop-th) once it is full. With the
 *    "auto" sector the whole image is used until `sectorFrames` frames were seen, then the fan is
 *    estimated from them and the buffered features are recomputed with the new mask; the
 *    estimate is refreshed when the frame size changes (window restarted) or when the static
 *    region outside the fan departs from its reference by more than `changeThreshold` grey levels.
 *
 *  - Evidential models (manifest `fusion`, [FusionSpec]): a whole clip is classified from its
 *    `key_clips` key windows spread evenly over it ([Evidential.keyClipStarts]), their evidence
 *    fused; a stream fuses each window with earlier ones one span apart ([FusedWindows]); both
 *    report [Prediction.uncertainty].
 *
 * The model itself sits behind [FrameModel], so the same code runs ExecuTorch or LiteRT on the
 * phone and a plain Kotlin model in the JVM tests.
 */
package org.echoweave.core

import kotlin.math.abs

/** The two exported methods, as a runtime on the device provides them. Calls may block. */
interface FrameModel {
    /** Runtime name reported in predictions ("executorch", "litert", ...). */
    val runtimeName: String

    /** `embed_frame`: one preprocessed frame (1, C, S, S) -> its feature (D). */
    fun embedFrame(frame: FloatTensor): FloatArray

    /** `classify_window`: T features (1, T, D) -> logits (K). */
    fun classifyWindow(features: FloatTensor): FloatArray
}

/**
 * What the classifier needs to know about the model; all of it comes from the manifest.
 *
 * @property frames T, the features one window holds.
 * @property frameStride k, the model's step between a window's frames (manifest `frame_stride`, default 1).
 * @property fusion the manifest's evidential `fusion` entry, null for other models.
 */
data class ModelInfo(
    val classNames: List<String>,
    val frames: Int,
    val spec: PreprocessSpec,
    val uncertainThreshold: Double,
    val aggregation: String = "window",
    val frameStride: Int = 1,
    val fusion: FusionSpec? = null,
) {
    init {
        require(frames >= 1) { "frames must be >= 1, got $frames" }
        require(frameStride >= 1) { "frameStride must be >= 1, got $frameStride" }
    }

    /** Frames of the clip one window covers, (T - 1) * k + 1 (Classifier.span). */
    val span: Int get() = (frames - 1) * frameStride + 1

    /** The T features of the window whose span starts at [start] in [perFrame]: every k-th, oldest first. */
    fun <E> windowOf(perFrame: List<E>, start: Int = 0): List<E> = List(frames) { perFrame[start + it * frameStride] }

    companion object {
        fun from(manifest: Manifest) = ModelInfo(manifest.classNames, manifest.frames, manifest.preprocessing,
            manifest.uncertainThreshold, manifest.aggregation, manifest.frameStride, manifest.fusion)
    }
}

/** Which sector mask a classifier applies (only when the spec's sector_mask is true). */
sealed class SectorChoice {
    /** Estimate the fan from the frames (whole clip; for streams see the file comment). */
    object Auto : SectorChoice()

    /** Never mask. */
    object Off : SectorChoice()

    /** Use this sector as is, never refreshed. */
    class Given(val sector: Sector) : SectorChoice()
}

/** A frame pushed to a stream is unusable; the stream's state is unchanged. */
class StreamInputException(problem: String) : IllegalArgumentException("stream: $problem")

/** Sector of a mask given by the app (method "given"), with its bounding box. */
fun sectorFromMask(mask: BooleanArray, h: Int, w: Int): Sector {
    require(mask.size == h * w && mask.any { it }) { "a sector mask must be a non-empty (H, W) mask" }
    var top = h; var bottom = 0; var left = w; var right = 0
    for (y in 0 until h) for (x in 0 until w) if (mask[y * w + x]) {
        top = minOf(top, y); bottom = maxOf(bottom, y + 1); left = minOf(left, x); right = maxOf(right, x + 1)
    }
    return Sector(h, w, mask, top, bottom, left, right, "given")
}

/**
 * Uint8 frames -> model input (1 or T, C, S, S), as Classifier.preprocess: gray first when the
 * spec is grayscale, the sector applied when the spec asks for a mask and one is given.
 */
fun preprocessWithSector(frames: Frames, spec: PreprocessSpec, sector: Sector?): FloatTensor {
    var f = if (spec.grayscale) rgbToGray(frames) else frames
    if (spec.sectorMask && sector != null) f = applySector(f, sector)
    return preprocessFrames(f, spec)
}

/** One frame (index [i]) of a (T, C, S, S) tensor as a (1, C, S, S) tensor. */
private fun frameOf(x: FloatTensor, i: Int): FloatTensor {
    val n = x.shape[1] * x.shape[2] * x.shape[3]
    return FloatTensor(intArrayOf(1, x.shape[1], x.shape[2], x.shape[3]), x.data.copyOfRange(i * n, (i + 1) * n))
}

private fun windowOf(features: List<FloatArray>): FloatTensor {
    val d = features[0].size
    val data = FloatArray(features.size * d)
    features.forEachIndexed { t, f -> f.copyInto(data, t * d) }
    return FloatTensor(intArrayOf(1, features.size, d), data)
}

/** Whole-clip classification (Classifier.predict_windows / predict). Thread-safe if [model] is. */
class ClipClassifier(val model: FrameModel, val info: ModelInfo) {
    /** First frame of each sliding window, each covering [ModelInfo.span] frames (a short clip has one window, padded). */
    fun windowStarts(numFrames: Int, hop: Int): List<Int> {
        require(hop >= 1) { "hop must be >= 1, got $hop" }
        return (0..maxOf(numFrames - info.span, 0) step hop).toList()
    }

    /**
     * One prediction per window every [hop] frames (T frames, frameStride apart); frameIndex/timeS
     * are the window's last frame. [starts] (first frames of the windows to run; default every
     * hop-th) are an evidential model's key clips. Each window keeps its logits; an evidential
     * model's window reports its own (one-clip) uncertainty.
     */
    fun predictWindows(frames: Frames, hop: Int = 1, fps: Double = 30.0, sector: SectorChoice = SectorChoice.Auto,
                       starts: List<Int>? = null): List<Prediction> {
        require(fps.isFinite() && fps > 0) { "fps must be positive, got $fps" }
        val t0 = System.nanoTime()
        val gray = if (info.spec.grayscale) rgbToGray(frames) else frames
        val chosen = when (sector) {
            SectorChoice.Auto -> if (info.spec.sectorMask) estimateSector(gray) else null
            SectorChoice.Off -> null
            is SectorChoice.Given -> sector.sector
        }
        val x = preprocessWithSector(gray, info.spec, chosen)  // (N, C, S, S)
        val n = x.shape[0]
        val feats = (0 until n).map { model.embedFrame(frameOf(x, it)) }
        val padded = feats + List(maxOf(info.span - n, 0)) { feats.last() }  // repeat the last frame
        val starts = starts ?: windowStarts(n, hop)
        require(starts.isNotEmpty() && starts.all { it >= 0 && it + info.span <= padded.size }) {
            "window starts must lie in 0..${padded.size - info.span}, got $starts"
        }
        val logits = starts.map { s -> model.classifyWindow(windowOf(info.windowOf(padded, s))) }
        val perWindow = (System.nanoTime() - t0) / 1e6 / starts.size
        return starts.zip(logits).map { (s, z) ->
            val last = minOf(s + info.span, n) - 1
            val z64 = DoubleArray(z.size) { z[it].toDouble() }
            makePrediction(softmax(z), info.classNames, info.uncertainThreshold, last, last / fps, perWindow, model.runtimeName)
                .copy(uncertainty = info.fusion?.let { Evidential.scaled(listOf(z64), it.prior).second }, logits = z64)
        }
    }

    /**
     * One prediction for the clip: the mean of its window probabilities ([combineWindows]). An
     * evidential model ([ModelInfo.fusion]) runs only its key clips, spread evenly over the clip
     * ([Evidential.keyClipStarts]; [hop] is then unused), and fuses them.
     */
    fun predict(frames: Frames, hop: Int = 1, fps: Double = 30.0, sector: SectorChoice = SectorChoice.Auto): Prediction {
        val t0 = System.nanoTime()
        val fusion = info.fusion
        val windows = if (fusion == null) predictWindows(frames, hop, fps, sector) else
            predictWindows(frames, 1, fps, sector, Evidential.keyClipStarts(frames.t, info.span, fusion.keyClips).toList())
        return combineWindows(windows, (System.nanoTime() - t0) / 1e6)
    }

    /** The clip prediction from window predictions of this model (Classifier.combine_windows; see [combineWindows]). */
    fun combineWindows(windows: List<Prediction>, latencyMs: Double = 0.0): Prediction =
        org.echoweave.core.combineWindows(windows, info.classNames, info.uncertainThreshold, info.fusion, latencyMs, model.runtimeName)
}

/**
 * Classify a live stream frame by frame with one backbone pass per frame (StreamingClassifier).
 * One instance per stream; [push] is synchronized, so a camera thread and a UI thread may share it.
 *
 * The ring buffer holds the features of the last [ModelInfo.span] frames; the head gets every
 * frameStride-th of them (T features, oldest first).
 *
 * @param hop emit a prediction on every hop-th frame once the buffer holds a whole window span.
 * @param sector [SectorChoice.Auto], [SectorChoice.Off] or a given sector.
 * @param refresh re-estimate an auto sector when the image changes.
 * @param sectorFrames frames used to estimate the sector (>= 2).
 * @param changeThreshold mean absolute grey-level change of the static region that triggers a refresh.
 * @param fps frame rate for timeS when [push] is given no time.
 */
class StreamingClassifier(
    val model: FrameModel,
    val info: ModelInfo,
    val hop: Int = 1,
    val sector: SectorChoice = SectorChoice.Auto,
    val refresh: Boolean = true,
    val sectorFrames: Int = 16,
    val changeThreshold: Double = 10.0,
    val fps: Double = 30.0,
) {
    private val span = info.span
    private val auto = sector is SectorChoice.Auto
    private val given: Sector? = (sector as? SectorChoice.Given)?.sector
    private val features = ArrayDeque<FloatArray>()
    private val raw = ArrayDeque<Frames>()  // grayscale frames behind those features
    private var pending = ArrayList<Frames>()  // frames collected for the next sector estimate
    private var reference: FloatArray? = null  // static-region mean on the 4-pixel check grid
    private var shape: Pair<Int, Int>? = null
    private val fused: FusedWindows? = info.fusion?.let { FusedWindows(span, hop, it) }  // evidential models

    /** The sector currently applied (null = whole image). */
    var currentSector: Sector? = given
        private set

    var framesSeen = 0
        private set

    var sectorUpdates = 0
        private set

    /** The newest frame's feature (for diagnostics and the golden test). */
    val lastFeature: FloatArray? get() = synchronized(this) { features.lastOrNull() }

    init {
        require(hop >= 1) { "hop must be >= 1, got $hop" }
        require(sectorFrames >= 2) { "sectorFrames must be >= 2 (motion needs two frames), got $sectorFrames" }
    }

    /** Forget all frames (buffer, sector estimate, counters). */
    @Synchronized
    fun reset() {
        features.clear(); raw.clear(); pending = ArrayList(); reference = null; shape = null
        fused?.clear()
        currentSector = given
        framesSeen = 0
        sectorUpdates = 0
    }

    private fun embed(gray: Frames, sector: Sector?): FloatArray = model.embedFrame(preprocessWithSector(gray, info.spec, sector))

    private fun staticChange(gray: Frames): Double {
        val sec = currentSector ?: return 0.0
        val ref = reference ?: return 0.0
        var sum = 0.0
        var n = 0
        for (y in 0 until gray.h step 4) for (x in 0 until gray.w step 4) {
            if (sec.mask[y * sec.w + x]) continue
            sum += abs(gray.at(0, y, x).toFloat() - ref[n]).toDouble()
            n++
        }
        return if (n == 0) 0.0 else sum / n
    }

    /** Advance the auto sector state with one frame; true if the sector changed. */
    private fun updateSector(gray: Frames): Boolean {
        val sec = currentSector
        if (sec == null || pending.isNotEmpty() || !sec.fromMotion) {
            pending.add(gray)
        } else if (refresh && staticChange(gray) > changeThreshold) {
            pending = arrayListOf(gray)  // the picture changed: collect frames for a new estimate
        }
        if (pending.size < sectorFrames) return false
        val (h, w) = gray.h to gray.w
        val stack = Frames(pending.size, h, w, 1, ByteArray(pending.size * h * w).also { buf ->
            pending.forEachIndexed { i, f -> f.data.copyInto(buf, i * h * w) }
        })
        pending = ArrayList()
        val fresh = estimateSector(stack)
        val ref = ArrayList<Float>()
        for (y in 0 until h step 4) for (x in 0 until w step 4) {
            if (fresh.mask[y * w + x]) continue
            var s = 0.0f
            for (i in 0 until stack.t) s += stack.at(i, y, x).toFloat()
            ref.add((s.toDouble() / stack.t).toFloat())
        }
        reference = ref.toFloatArray()
        currentSector = fresh
        sectorUpdates++
        return true
    }

    /**
     * Add one frame (a single-frame [Frames], gray or RGB); returns a window [Prediction] on
     * every hop-th full window, else null.
     *
     * @throws StreamInputException not a single frame, non-finite time, or a size that does not
     *     match a given sector; the stream is left unchanged.
     */
    fun push(frame: Frames, timeS: Double? = null): Prediction? {
        if (frame.t != 1) throw StreamInputException("push one frame at a time, got ${frame.t}")
        if (timeS != null && !timeS.isFinite()) throw StreamInputException("timeS must be finite, got $timeS")
        val t0 = System.nanoTime()
        val gray = if (frame.channels == 3) rgbToGray(frame) else Frames(1, frame.h, frame.w, 1, frame.data.copyOf(), frame.source)
        val logits: FloatArray
        val index: Int
        val uncertainty: Double?
        synchronized(this) {
            val size = gray.h to gray.w
            val sec = currentSector
            if (shape != null && size != shape) {
                // New geometry (depth/zoom/probe change): old frames and masks no longer apply.
                features.clear(); raw.clear(); pending = ArrayList(); reference = null
                fused?.clear()
                if (auto || (sec != null && (sec.h to sec.w) != size)) currentSector = null
            }
            currentSector?.let {
                if (!auto && (it.h to it.w) != size) {
                    throw StreamInputException("frame $size does not match the given sector mask (${it.h}, ${it.w})")
                }
            }
            shape = size
            if (auto && info.spec.sectorMask && updateSector(gray)) {
                // Re-embed the buffered frames so the whole window shares one mask.
                val again = raw.map { embed(it, currentSector) }
                features.clear(); features.addAll(again)
            }
            features.addLast(embed(gray, currentSector))
            raw.addLast(gray)
            while (features.size > span) features.removeFirst()
            while (raw.size > span) raw.removeFirst()
            index = framesSeen
            framesSeen++
            if (features.size < span || (index + 1 - span) % hop != 0) return null
            logits = model.classifyWindow(windowOf(info.windowOf(features)))  // (K,) from T features, oldest first
            // Evidential models: this window fused with earlier ones one span apart.
            uncertainty = fused?.add(DoubleArray(logits.size) { logits[it].toDouble() })
        }
        val time = timeS ?: (index / fps)
        val pred = makePrediction(softmax(logits), info.classNames, info.uncertainThreshold, index, time,
            (System.nanoTime() - t0) / 1e6, model.runtimeName)
        return pred.copy(uncertainty = uncertainty, logits = DoubleArray(logits.size) { logits[it].toDouble() })
    }
}
