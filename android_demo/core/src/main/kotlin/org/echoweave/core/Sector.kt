/*
 * Find the ultrasound fan (sector) in a clip and blank everything else: a port of
 * echoweave.edge.sector (read its module docstring for the why).
 *
 * Inside the fan the image changes every frame; outside it the scanner draws static text, scales
 * and logos. So: per-pixel temporal std -> threshold -> majority (box) filter -> largest
 * 4-connected region -> fill rows, columns, rows. A clip without motion falls back to the
 * largest non-dark region, or the whole image. The float32 std and the percentile threshold
 * repeat numpy's arithmetic, so masks equal Python's exactly (golden test).
 */
package org.echoweave.core

import kotlin.math.floor
import kotlin.math.max
import kotlin.math.sqrt

const val SECTOR_MOTION = "motion"
const val SECTOR_BRIGHTNESS = "single_frame_brightness"
const val SECTOR_WHOLE_IMAGE = "whole_image"

/**
 * Where the ultrasound fan is.
 *
 * @property mask (H, W) row-major, true inside the fan.
 * @property top first row of the mask's bounding box; [bottom] and [right] are exclusive.
 * @property method [SECTOR_MOTION], or a fallback ([SECTOR_BRIGHTNESS], [SECTOR_WHOLE_IMAGE]).
 */
class Sector(
    val h: Int, val w: Int, val mask: BooleanArray,
    val top: Int, val bottom: Int, val left: Int, val right: Int,
    val method: String = SECTOR_MOTION,
) {
    val fromMotion: Boolean get() = method == SECTOR_MOTION
    val bbox: IntArray get() = intArrayOf(top, bottom, left, right)
}

/**
 * Majority filter: true where more than half of the [size] x [size] window (zero padded)
 * around a pixel is true. Python computes box_mean(mask, size) > 0.5 in float32; the window
 * sums are exact integers there, so comparing 2 * sum > size^2 in integers is the same test.
 */
fun majorityFilter(mask: BooleanArray, h: Int, w: Int, size: Int): BooleanArray {
    val counts = windowCounts(mask, h, w, size)
    return BooleanArray(h * w) { 2 * counts[it] > size * size }
}

/**
 * Morphological opening with a [size] x [size] square (open_mask in Python): erase structures
 * thinner than the window (an ECG trace, text strokes) and keep the rest as it was.
 */
fun openMask(mask: BooleanArray, h: Int, w: Int, size: Int): BooleanArray {
    val full = windowCounts(mask, h, w, size)
    val eroded = BooleanArray(h * w) { full[it] == size * size }
    val grown = windowCounts(eroded, h, w, size)
    return BooleanArray(h * w) { grown[it] > 0 && mask[it] }
}

/** True pixels in the [size] x [size] window around each pixel (zero padded), from a summed-area table. */
fun windowCounts(mask: BooleanArray, h: Int, w: Int, size: Int): IntArray {
    val r = size / 2
    val sat = IntArray((h + 1) * (w + 1))  // summed-area table, sat[(y+1)*(w+1)+(x+1)] = sum of mask[..y, ..x]
    for (y in 0 until h) {
        var row = 0
        for (x in 0 until w) {
            if (mask[y * w + x]) row++
            sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + row
        }
    }
    val out = IntArray(h * w)
    for (y in 0 until h) {
        val y0 = max(y - r, 0)
        val y1 = minOf(y - r + size, h)
        for (x in 0 until w) {
            val x0 = max(x - r, 0)
            val x1 = minOf(x - r + size, w)
            out[y * w + x] = sat[y1 * (w + 1) + x1] - sat[y0 * (w + 1) + x1] - sat[y1 * (w + 1) + x0] + sat[y0 * (w + 1) + x0]
        }
    }
    return out
}

/**
 * The largest 4-connected true region (run-length union-find, as largest_component in Python:
 * same union order and, on a tie, the region whose root was seen first).
 */
fun largestComponent(mask: BooleanArray, h: Int, w: Int): BooleanArray {
    val parent = ArrayList<Int>()
    fun find(start: Int): Int {
        var i = start
        while (parent[i] != i) {
            parent[i] = parent[parent[i]]
            i = parent[i]
        }
        return i
    }
    val runs = ArrayList<IntArray>()  // (row, start, stop, run id)
    var prev = ArrayList<IntArray>()
    for (y in 0 until h) {
        val cur = ArrayList<IntArray>()
        var x = 0
        while (x < w) {
            if (!mask[y * w + x]) { x++; continue }
            val a = x
            while (x < w && mask[y * w + x]) x++
            val rid = parent.size
            parent.add(rid)
            for (p in prev) {  // runs of the previous row that overlap this one
                if (p[0] < x && a < p[1]) {
                    val ra = find(rid)
                    val rb = find(p[2])
                    if (ra != rb) parent[ra] = rb
                }
            }
            cur.add(intArrayOf(a, x, rid))
            runs.add(intArrayOf(y, a, x, rid))
        }
        prev = cur
    }
    val out = BooleanArray(h * w)
    if (runs.isEmpty()) return out
    val sizes = LinkedHashMap<Int, Int>()
    for (run in runs) {
        val root = find(run[3])
        sizes[root] = (sizes[root] ?: 0) + (run[2] - run[1])
    }
    var best = -1
    var bestSize = -1
    for ((root, size) in sizes) if (size > bestSize) { best = root; bestSize = size }
    for (run in runs) {
        if (find(run[3]) == best) for (x in run[1] until run[2]) out[run[0] * w + x] = true
    }
    return out
}

private fun fillRows(mask: BooleanArray, h: Int, w: Int): BooleanArray {
    val out = BooleanArray(h * w)
    for (y in 0 until h) {
        var first = -1
        var last = -1
        for (x in 0 until w) if (mask[y * w + x]) { if (first < 0) first = x; last = x }
        if (first >= 0) for (x in first..last) out[y * w + x] = true
    }
    return out
}

private fun transpose(mask: BooleanArray, h: Int, w: Int): BooleanArray {
    val out = BooleanArray(h * w)
    for (y in 0 until h) for (x in 0 until w) out[x * h + y] = mask[y * w + x]
    return out
}

/** Fill between the extreme pixels of each row, then each column, then each row again. */
fun fillConvexish(mask: BooleanArray, h: Int, w: Int): BooleanArray {
    val rows = fillRows(mask, h, w)
    val cols = transpose(fillRows(transpose(rows, h, w), w, h), w, h)
    return fillRows(cols, h, w)
}

private fun clean(active: BooleanArray, h: Int, w: Int, smooth: Int): BooleanArray {
    val voted = if (smooth > 1) majorityFilter(active, h, w, smooth) else active  // no growth, no speckle holes
    return fillConvexish(largestComponent(voted, h, w), h, w)
}

private fun sectorOf(mask: BooleanArray, h: Int, w: Int, method: String): Sector {
    var top = h; var bottom = 0; var left = w; var right = 0
    for (y in 0 until h) for (x in 0 until w) if (mask[y * w + x]) {
        if (y < top) top = y
        if (y + 1 > bottom) bottom = y + 1
        if (x < left) left = x
        if (x + 1 > right) right = x + 1
    }
    return Sector(h, w, mask, top, bottom, left, right, method)
}

private fun fraction(mask: BooleanArray): Double = mask.count { it }.toDouble() / mask.size

private fun fallback(gray: Frames, smooth: Int, minFraction: Double): Sector {
    val (h, w) = gray.h to gray.w
    val bright = BooleanArray(h * w)  // "non-dark": above the black background of the display
    for (i in 0 until gray.t) for (p in 0 until h * w) {
        if ((gray.data[i * h * w + p].toInt() and 0xFF) > 8) bright[p] = true
    }
    // An ECG trace or depth scale touching the fan joins it; an opening wider than a line cuts it off.
    val mask = clean(openMask(bright, h, w, max(5, minOf(h, w) / 20) or 1), h, w, smooth)
    if (fraction(mask) >= minFraction) return sectorOf(mask, h, w, SECTOR_BRIGHTNESS)
    return Sector(h, w, BooleanArray(h * w) { true }, 0, h, 0, w, SECTOR_WHOLE_IMAGE)
}

/**
 * Per-pixel temporal standard deviation over the frames, float32, with numpy's arithmetic for
 * `gray.std(0, dtype=float32)`: sequential float32 sums over frames, mean and variance divided
 * in double and rounded to float32, float32 square root.
 */
fun temporalStd(gray: Frames): FloatArray {
    val n = gray.h * gray.w
    val t = gray.t
    val sum = FloatArray(n)
    for (i in 0 until t) for (p in 0 until n) sum[p] += (gray.data[i * n + p].toInt() and 0xFF).toFloat()
    val mean = FloatArray(n) { (sum[it].toDouble() / t).toFloat() }
    val sq = FloatArray(n)
    for (i in 0 until t) for (p in 0 until n) {
        val d = (gray.data[i * n + p].toInt() and 0xFF).toFloat() - mean[p]
        sq[p] += d * d
    }
    return FloatArray(n) { sqrt((sq[it].toDouble() / t).toFloat().toDouble()).toFloat() }
}

/**
 * numpy's default ("linear") percentile of a float32 array, returned as float32 the way
 * `np.percentile(a, q)` computes it for a Python-number q.
 */
fun percentileLinear(values: FloatArray, q: Double): Float {
    require(values.isNotEmpty()) { "percentile of an empty array" }
    val sorted = values.copyOf().also { it.sort() }
    val n = sorted.size
    val quantile = q / 100.0
    val virtual = n * quantile + (1.0 + quantile * (1.0 - 1.0 - 1.0)) - 1.0
    val prevIdx = floor(virtual)
    val gamma = virtual - prevIdx
    val i0 = prevIdx.toInt().coerceIn(0, n - 1)
    val i1 = (i0 + 1).coerceAtMost(n - 1)
    val a = sorted[i0]
    val b = sorted[i1]
    val diff = b - a
    // numpy's _lerp: a + diff*t, or b - diff*(1-t) when t >= 0.5; t joins the float32 math as float32.
    return if (gamma >= 0.5) b - diff * (1.0 - gamma).toFloat() else a + diff * gamma.toFloat()
}

/**
 * Estimate the ultrasound fan from the pixels that change over the clip (estimate_sector).
 *
 * @param frames (T, H, W) gray or (T, H, W, 3) RGB uint8.
 * @param threshold temporal std above which a pixel counts as moving; default
 *     max(0.5, 3 * 25th percentile of the std).
 * @param smooth majority-filter window; default max(3, min(H, W) / 40) made odd.
 * @param minFraction a moving region smaller than this share of the image is not trusted.
 */
fun estimateSector(frames: Frames, threshold: Double? = null, smooth: Int? = null, minFraction: Double = 0.05): Sector {
    val gray = rgbToGray(frames)
    val (h, w) = gray.h to gray.w
    val win = smooth ?: (max(3, minOf(h, w) / 40) or 1)
    if (gray.t < 2) return fallback(gray, win, minFraction)
    val std = temporalStd(gray)
    val thr = threshold ?: max(0.5, 3.0 * percentileLinear(std, 25.0).toDouble())
    val thr32 = thr.toFloat()  // numpy compares a float32 array with a Python float in float32
    val active = BooleanArray(h * w) { std[it] > thr32 }
    val mask = clean(active, h, w, win)
    if (fraction(mask) < minFraction) return fallback(gray, win, minFraction)  // frozen or near-static clip
    return sectorOf(mask, h, w, SECTOR_MOTION)
}

/**
 * Zero every pixel outside the fan and crop to its bounding box (apply_sector).
 *
 * @return (T, bottom-top, right-left[, 3]) uint8, a new stack.
 */
fun applySector(frames: Frames, sector: Sector): Frames {
    if (frames.h != sector.h || frames.w != sector.w) {
        throw FrameException(frames.source, "frames (${frames.h}, ${frames.w}) and sector mask (${sector.h}, ${sector.w}) differ in size")
    }
    val oh = sector.bottom - sector.top
    val ow = sector.right - sector.left
    val c = frames.channels
    val out = ByteArray(frames.t * oh * ow * c)
    for (i in 0 until frames.t) for (y in 0 until oh) for (x in 0 until ow) {
        val sy = y + sector.top
        val sx = x + sector.left
        if (!sector.mask[sy * sector.w + sx]) continue
        val src = ((i * frames.h + sy) * frames.w + sx) * c
        val dst = ((i * oh + y) * ow + x) * c
        for (ch in 0 until c) out[dst + ch] = frames.data[src + ch]
    }
    return Frames(frames.t, oh, ow, c, out, frames.source)
}
