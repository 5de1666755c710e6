/*
 * Where frames come from: a video file (MediaMetadataRetriever, frame by frame) or the camera
 * (CameraX ImageAnalysis). Both hand the core uint8 pixel arrays in numpy's layout; the core
 * does grayscale, sector mask, resize and crop exactly as the Python edge.
 */
package org.echoweave.demo

import android.content.Context
import android.graphics.Bitmap
import android.media.MediaMetadataRetriever
import android.net.Uri
import androidx.camera.core.ImageProxy
import org.echoweave.core.Frames

/** An RGB bitmap as a one-frame (1, H, W, 3) stack. */
fun bitmapToFrames(bitmap: Bitmap, source: String): Frames {
    val w = bitmap.width
    val h = bitmap.height
    val argb = IntArray(w * h)
    bitmap.getPixels(argb, 0, w, 0, 0, w, h)
    val rgb = ByteArray(w * h * 3)
    for (i in argb.indices) {
        val p = argb[i]
        rgb[3 * i] = (p shr 16 and 0xFF).toByte()
        rgb[3 * i + 1] = (p shr 8 and 0xFF).toByte()
        rgb[3 * i + 2] = (p and 0xFF).toByte()
    }
    return Frames(1, h, w, 3, rgb, source)
}

/**
 * The luma (Y) plane of a camera frame as a one-frame gray stack. A camera's Y is already
 * BT.601 luma, so no RGB round trip is needed; row and pixel strides are honoured.
 */
fun imageProxyToGray(image: ImageProxy): Frames {
    val plane = image.planes[0]
    val buffer = plane.buffer
    val w = image.width
    val h = image.height
    val out = ByteArray(w * h)
    for (y in 0 until h) for (x in 0 until w) out[y * w + x] = buffer.get(y * plane.rowStride + x * plane.pixelStride)
    return Frames(1, h, w, 1, out, "camera")
}

/** Frames of a video file, decoded one at a time (API 28+: getFrameAtIndex). */
class VideoFrameSource(context: Context, uri: Uri) : AutoCloseable {
    private val retriever = MediaMetadataRetriever().apply { setDataSource(context, uri) }
    private val name = uri.lastPathSegment ?: uri.toString()

    val frameCount: Int = retriever.extractMetadata(MediaMetadataRetriever.METADATA_KEY_VIDEO_FRAME_COUNT)?.toIntOrNull()
        ?: throw IllegalArgumentException("$name: the container does not state a frame count")

    /** Frames per second from the frame count and duration (the container's own rate when stated). */
    val fps: Double = run {
        val capture = retriever.extractMetadata(MediaMetadataRetriever.METADATA_KEY_CAPTURE_FRAMERATE)?.toDoubleOrNull()
        val durationMs = retriever.extractMetadata(MediaMetadataRetriever.METADATA_KEY_DURATION)?.toDoubleOrNull()
        capture ?: if (durationMs != null && durationMs > 0) frameCount * 1000.0 / durationMs else 30.0
    }

    /** Frame [index] as a (1, H, W, 3) RGB stack. */
    fun frame(index: Int): Frames {
        val bitmap = retriever.getFrameAtIndex(index) ?: throw IllegalArgumentException("$name: cannot decode frame $index")
        return bitmapToFrames(bitmap, name).also { bitmap.recycle() }
    }

    override fun close() = retriever.release()
}
