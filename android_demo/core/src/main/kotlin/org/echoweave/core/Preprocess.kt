/*
 * The preprocessing spec that travels with a model, and the deterministic eval preprocessing
 * on uint8 pixel arrays: a port of echoweave.edge.preprocess (and edge/image.rgb_to_gray).
 *
 * Order (as in Python): [sector mask, clip-level, by the caller] -> grayscale (BT.601, rounded)
 * -> scale to float32 -> antialiased bilinear resize of the shorter side -> centre crop.
 * `resizeWeights` repeats the Python arithmetic step by step, including which operations round
 * to float32, so its matrix equals Python's bit for bit (golden test). The resize sums then run
 * over the non-zero taps only; their float32 results match numpy's BLAS sums to ~1e-7.
 */
package org.echoweave.core

import kotlin.math.abs
import kotlin.math.ceil
import kotlin.math.max
import kotlin.math.min
import kotlin.math.round

/** Bad pixel input (wrong size, empty, ...); the message names the source and the problem. */
class FrameException(source: String, problem: String) : IllegalArgumentException("$source: $problem")

/**
 * How raw uint8 frames become model input (PreprocessSpec in edge/preprocess.py).
 *
 * @property grayscale convert RGB frames to one luma channel (BT.601, rounded to uint8).
 * @property sectorMask the caller zeroes everything outside the ultrasound sector first (see [estimateSector]).
 * @property resize length of the shorter side after resizing (antialiased bilinear).
 * @property crop side of the square centre crop taken after resizing (<= resize).
 * @property scale multiplier that maps uint8 pixels to the model's float input (1/255 -> [0, 1]).
 */
data class PreprocessSpec(
    val grayscale: Boolean = true,
    val sectorMask: Boolean = true,
    val resize: Int = 232,
    val crop: Int = 224,
    val scale: Double = 1.0 / 255.0,
) {
    init {
        require(resize >= 1) { "PreprocessSpec.resize must be a positive integer, got $resize" }
        require(crop >= 1) { "PreprocessSpec.crop must be a positive integer, got $crop" }
        require(crop <= resize) { "PreprocessSpec.crop ($crop) must not exceed resize ($resize)" }
        require(scale.isFinite() && scale > 0) { "PreprocessSpec.scale must be a positive number, got $scale" }
    }

    /** Input channels of the model this spec feeds (1 when grayscale). */
    val channels: Int get() = if (grayscale) 1 else 3

    companion object {
        private val KNOWN = listOf("grayscale", "sector_mask", "resize", "crop", "scale")

        /** Build a spec from its JSON dict; unknown keys are an error, missing keys take defaults. */
        fun fromJson(data: Map<String, Any?>): PreprocessSpec {
            val unknown = data.keys.filter { it !in KNOWN }.sorted()
            require(unknown.isEmpty()) { "unknown preprocessing spec key(s) $unknown; known keys are ${KNOWN.sorted()}" }
            val d = PreprocessSpec()
            fun bool(key: String, default: Boolean): Boolean {
                val v = data[key] ?: return default.also { require(key !in data) { "PreprocessSpec.$key must be true or false, got null" } }
                return v as? Boolean ?: throw IllegalArgumentException("PreprocessSpec.$key must be true or false, got ${Json.write(v)}")
            }
            fun int(key: String, default: Int): Int {
                if (key !in data) return default
                val v = data[key]
                if (v !is Long || v < 1 || v > Int.MAX_VALUE) {
                    throw IllegalArgumentException("PreprocessSpec.$key must be a positive integer, got ${Json.write(v)}")
                }
                return v.toInt()
            }
            val scale = when (val v = data["scale"]) {
                null -> if ("scale" in data) throw IllegalArgumentException("PreprocessSpec.scale must be a positive number, got null") else d.scale
                is Long -> v.toDouble()
                is Double -> v
                else -> throw IllegalArgumentException("PreprocessSpec.scale must be a positive number, got ${Json.write(v)}")
            }
            return PreprocessSpec(bool("grayscale", d.grayscale), bool("sector_mask", d.sectorMask),
                int("resize", d.resize), int("crop", d.crop), scale)
        }
    }
}

/**
 * A stack of uint8 frames in numpy's row-major layout: (T, H, W) when [channels] is 1,
 * (T, H, W, 3) interleaved RGB when it is 3. Pixels are unsigned: read them with `toInt() and 0xFF`.
 */
class Frames(val t: Int, val h: Int, val w: Int, val channels: Int, val data: ByteArray, val source: String = "frames") {
    init {
        if (channels != 1 && channels != 3) throw FrameException(source, "frames must have 1 or 3 channels, got $channels")
        if (t <= 0 || h <= 0 || w <= 0) throw FrameException(source, "frames must not be empty, got shape ($t, $h, $w)")
        if (data.size != t * h * w * channels) {
            throw FrameException(source, "pixel buffer holds ${data.size} bytes, shape ($t, $h, $w, $channels) needs ${t * h * w * channels}")
        }
    }

    /** Unsigned value of pixel (frame [i], row [y], column [x], channel [c]). */
    fun at(i: Int, y: Int, x: Int, c: Int = 0): Int = data[((i * h + y) * w + x) * channels + c].toInt() and 0xFF

    /** Frames [from] until [to] as a new stack sharing nothing with this one. */
    fun slice(from: Int, to: Int): Frames {
        val n = h * w * channels
        return Frames(to - from, h, w, channels, data.copyOfRange(from * n, to * n), source)
    }
}

/** A float32 tensor in row-major layout. */
class FloatTensor(val shape: IntArray, val data: FloatArray) {
    init {
        require(shape.fold(1) { a, b -> a * b } == data.size) { "shape ${shape.toList()} does not match ${data.size} values" }
    }
}

// ITU-R BT.601 luma weights as float32, what PIL's "L" conversion and torchvision use.
private const val LUMA_R = 0.299f
private const val LUMA_G = 0.587f
private const val LUMA_B = 0.114f

/**
 * Luma of one RGB pixel, rounded half-to-even and clipped to 0..255 (rgb_to_gray in edge/image.py).
 *
 * The value rounded is the exact r*0.299f + g*0.587f + b*0.114f: each product of a byte and a
 * float32 weight is a multiple of 2^-27 below 2^8, so their sum in double has no rounding error
 * in any order. (A float32 sum has: its order, which numpy leaves to the CPU's BLAS kernel,
 * changed the result for about 1 triple in 14 000.)
 */
fun lumaOf(r: Int, g: Int, b: Int): Int {
    val y = r * LUMA_R.toDouble() + g * LUMA_G.toDouble() + b * LUMA_B.toDouble()
    return round(y).toInt().coerceIn(0, 255)
}

/** Convert (T, H, W, 3) RGB frames to (T, H, W) grayscale (BT.601, rounded); gray input is returned as is. */
fun rgbToGray(frames: Frames): Frames {
    if (frames.channels == 1) return frames
    val n = frames.t * frames.h * frames.w
    val out = ByteArray(n)
    val d = frames.data
    for (i in 0 until n) {
        out[i] = lumaOf(d[3 * i].toInt() and 0xFF, d[3 * i + 1].toInt() and 0xFF, d[3 * i + 2].toInt() and 0xFF).toByte()
    }
    return Frames(frames.t, frames.h, frames.w, 1, out, frames.source)
}

/**
 * Output (height, width) when the shorter side becomes [shortSide]; the longer side is
 * truncated, `int(short_side * long / short)`, and square frames count width as shorter.
 */
fun resizedSize(height: Int, width: Int, shortSide: Int): Pair<Int, Int> {
    val widthShorter = width <= height
    val short = if (widthShorter) width else height
    val long = if (widthShorter) height else width
    val newLong = ((shortSide.toLong() * long).toDouble() / short).toInt()
    return if (widthShorter) Pair(newLong, shortSide) else Pair(shortSide, newLong)
}

/** Start index of a centred crop; round-half-to-even as torchvision's CenterCrop (Python's round). */
fun centreCropOffset(size: Int, crop: Int): Int = round((size - crop) / 2.0).toInt()  // kotlin.math.round: ties to even

/**
 * Antialiased bilinear (triangle filter) resize weights, row i = output pixel i.
 *
 * @property dense (outSize x inSize) row-major weights, equal to resize_weights(in, out) in Python.
 * @property lo first input index with a non-zero weight in each row.
 * @property hi one past the last such index (lo == hi for an all-zero row).
 */
class ResizeWeights(val inSize: Int, val outSize: Int, val dense: FloatArray, val lo: IntArray, val hi: IntArray) {
    fun weight(row: Int, col: Int): Float = dense[row * inSize + col]
}

private val weightCache = object : LinkedHashMap<Long, ResizeWeights>(16, 0.75f, true) {
    override fun removeEldestEntry(eldest: MutableMap.MutableEntry<Long, ResizeWeights>?) = size > 64
}

/**
 * `(outSize, inSize)` antialiased bilinear weights, a step-by-step port of resize_weights in
 * edge/preprocess.py (itself PyTorch's float32 `_compute_indices_min_size_weights_aa`): the
 * same float32/float64 roundings in the same places. Cached (a stream of same-sized frames builds it once).
 */
fun resizeWeights(inSize: Int, outSize: Int): ResizeWeights {
    require(inSize >= 1 && outSize >= 1) { "resize sizes must be positive, got $inSize -> $outSize" }
    val key = (inSize.toLong() shl 32) or outSize.toLong()
    synchronized(weightCache) { weightCache[key]?.let { return it } }
    val scale = inSize.toFloat() / outSize.toFloat()
    val support = if (scale >= 1.0f) scale else 1.0f  // bilinear half-width 1, widened when shrinking
    val invscale = if (scale >= 1.0f) (1.0 / scale.toDouble()).toFloat() else 1.0f
    val maxTaps = ceil(support.toDouble()).toInt() * 2 + 1
    val dense = FloatArray(outSize * inSize)
    val taps = FloatArray(maxTaps)
    for (i in 0 until outSize) {
        val center = (scale.toDouble() * (i + 0.5)).toFloat()
        // toLong() truncates toward zero, as numpy's astype(int64) and C++'s static_cast.
        val lo = max(((center - support).toDouble() + 0.5).toLong(), 0L).toInt()
        val hi = min(((center + support).toDouble() + 0.5).toLong(), inSize.toLong()).toInt()
        val nTaps = (hi - lo).coerceIn(0, maxTaps)
        var total = 0.0f
        for (k in 0 until maxTaps) {
            var tap = 0.0f
            if (k < nTaps) {
                val dist = abs((((lo + k).toFloat() - center).toDouble() + 0.5) * invscale.toDouble()).toFloat()
                tap = if (dist < 1.0f) (1.0 - dist.toDouble()).toFloat() else 0.0f
            }
            taps[k] = tap
            total += tap  // sequential float32 sum, the kernel's order
        }
        for (k in 0 until nTaps) {
            val col = lo + k
            if (col < inSize) dense[i * inSize + col] = if (total != 0.0f) taps[k] / total else 0.0f
        }
    }
    val los = IntArray(outSize)
    val his = IntArray(outSize)
    for (i in 0 until outSize) {
        var a = 0
        while (a < inSize && dense[i * inSize + a] == 0.0f) a++
        var b = inSize
        while (b > a && dense[i * inSize + b - 1] == 0.0f) b--
        los[i] = a
        his[i] = b
    }
    val weights = ResizeWeights(inSize, outSize, dense, los, his)
    synchronized(weightCache) { weightCache[key] = weights }
    return weights
}

/**
 * Deterministic eval preprocessing: uint8 frames -> float32 model input (preprocess_frames).
 *
 * When `spec.sectorMask` is true the caller applies the clip-level sector mask first
 * ([estimateSector] / [applySector]); one frame is not enough to find the fan.
 *
 * @return (T, C, crop, crop) float32, C = 1 for grayscale specs (3 for RGB input to an RGB spec).
 */
fun preprocessFrames(frames: Frames, spec: PreprocessSpec): FloatTensor {
    val src = if (frames.channels == 3 && spec.grayscale) rgbToGray(frames) else frames
    val (t, c, h, w) = listOf(src.t, src.channels, src.h, src.w)
    val (newH, newW) = resizedSize(h, w, spec.resize)
    // Resizing then cropping equals resizing only the kept rows/columns.
    val top = centreCropOffset(newH, spec.crop)
    val left = centreCropOffset(newW, spec.crop)
    val wy = resizeWeights(h, newH)
    val wx = resizeWeights(w, newW)
    val crop = spec.crop
    val scale = spec.scale.toFloat()
    val out = FloatArray(t * c * crop * crop)
    val plane = FloatArray(h * w)
    val cols = FloatArray(h * crop)  // (H, crop): each row resized along x
    for (i in 0 until t) {
        for (ch in 0 until c) {
            for (p in 0 until h * w) plane[p] = (src.data[(i * h * w + p) * c + ch].toInt() and 0xFF).toFloat() * scale
            for (y in 0 until h) {
                for (j in 0 until crop) {
                    val row = left + j
                    var acc = 0.0f
                    for (x in wx.lo[row] until wx.hi[row]) acc += plane[y * w + x] * wx.dense[row * w + x]
                    cols[y * crop + j] = acc
                }
            }
            val base = (i * c + ch) * crop * crop
            for (k in 0 until crop) {
                val row = top + k
                for (j in 0 until crop) {
                    var acc = 0.0f
                    for (y in wy.lo[row] until wy.hi[row]) acc += wy.dense[row * h + y] * cols[y * crop + j]
                    out[base + k * crop + j] = acc
                }
            }
        }
    }
    return FloatTensor(intArrayOf(t, c, crop, crop), out)
}
