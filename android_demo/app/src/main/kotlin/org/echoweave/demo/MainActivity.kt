/*
 * The demo screen: pick a runtime, open a video file or the camera, and watch the view, its
 * confidence and the "uncertain view" flag update per frame, with per-frame latency (median, p90,
 * p99, fps: the benchmark harness's fields). The model folder is the first
 * files/<model_id>/manifest.json found in the app's external files directory (see README).
 */
package org.echoweave.demo

import android.Manifest as AndroidManifest
import android.content.Intent
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.net.Uri
import android.os.Bundle
import android.util.Log
import android.view.View
import android.widget.Button
import android.widget.ImageView
import android.widget.RadioGroup
import android.widget.TextView
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import androidx.lifecycle.lifecycleScope
import java.io.File
import java.util.concurrent.atomic.AtomicBoolean
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.echoweave.core.MANIFEST_FILE
import org.echoweave.core.Manifest
import org.echoweave.core.ModelInfo

class MainActivity : AppCompatActivity() {
    private lateinit var preview: PreviewView
    private lateinit var videoFrame: ImageView
    private lateinit var viewLabel: TextView
    private lateinit var confidenceLabel: TextView
    private lateinit var latencyLabel: TextView
    private lateinit var status: TextView
    private lateinit var runtimeGroup: RadioGroup

    private var session: StreamSession? = null
    private var cameraProvider: ProcessCameraProvider? = null
    private val videoRunning = AtomicBoolean(false)

    private val pickVideo = registerForActivityResult(ActivityResultContracts.OpenDocument()) { uri -> uri?.let(::startVideo) }
    private val askCamera = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else status.text = "camera permission denied"
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        preview = findViewById(R.id.preview)
        videoFrame = findViewById(R.id.videoFrame)
        viewLabel = findViewById(R.id.viewLabel)
        confidenceLabel = findViewById(R.id.confidenceLabel)
        latencyLabel = findViewById(R.id.latencyLabel)
        status = findViewById(R.id.status)
        runtimeGroup = findViewById(R.id.runtimeGroup)
        findViewById<Button>(R.id.openVideo).setOnClickListener { pickVideo.launch(arrayOf("video/*")) }
        findViewById<Button>(R.id.camera).setOnClickListener {
            if (ContextCompat.checkSelfPermission(this, AndroidManifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
                startCamera()
            } else {
                askCamera.launch(AndroidManifest.permission.CAMERA)
            }
        }
        findViewById<Button>(R.id.stop).setOnClickListener { stopAll() }
        findViewById<Button>(R.id.timeline).setOnClickListener { startActivity(Intent(this, TimelineActivity::class.java)) }
        status.text = modelFolder()?.let { "model: ${it.name}" } ?: getString(R.string.no_model, getExternalFilesDir(null))
    }

    override fun onDestroy() {
        stopAll()
        super.onDestroy()
    }

    /** The first folder under the app's external files dir that holds a manifest.json. */
    private fun modelFolder(): File? =
        getExternalFilesDir(null)?.listFiles()?.filter { File(it, MANIFEST_FILE).isFile }?.minByOrNull { it.name }

    private fun runtime(): RuntimeChoice =
        if (runtimeGroup.checkedRadioButtonId == R.id.runtimeLitert) RuntimeChoice.LITERT else RuntimeChoice.EXECUTORCH

    /** Read the manifest and open the model off the main thread (sha256 of a large file takes a moment). */
    private suspend fun openSession(fps: Double): StreamSession? = withContext(Dispatchers.IO) {
        val folder = modelFolder() ?: return@withContext null
        try {
            val manifest = Manifest.read(folder)
            val model = openFrameModel(folder, manifest, runtime())
            Log.i(LOG_TAG, "opened ${manifest.modelId} with ${model.runtimeName}; T=${manifest.frames}, " +
                "frame stride ${manifest.frameStride} (window spans ${manifest.windowSpan} frames), " +
                "input ${manifest.inputSize}px, ${manifest.classes.size} classes")
            StreamSession(model, ModelInfo.from(manifest), fps, ::showResult)
        } catch (e: Exception) {
            Log.e(LOG_TAG, "cannot open the model", e)
            withContext(Dispatchers.Main) { status.text = e.message }
            null
        }
    }

    private fun showResult(result: FrameResult) {
        result.prediction?.let { p ->
            viewLabel.text = if (p.uncertain) "${p.view} (${getString(R.string.uncertain)})" else p.view
            viewLabel.setTextColor(if (p.uncertain) 0xFFFFC040.toInt() else 0xFFFFFFFF.toInt())
            // An evidential model (manifest "fusion") also says how much it does not know.
            val unc = p.uncertainty?.let { "   uncertainty %.2f".format(it) } ?: ""
            confidenceLabel.text = "confidence %.2f%s   frame %d".format(p.confidence, unc, p.frameIndex)
        } ?: run {
            if (viewLabel.text.isNullOrEmpty()) viewLabel.text = getString(R.string.waiting)
        }
        latencyLabel.text = result.latency?.let { s -> "frame %.1f ms | %s".format(result.frameMs, s.summary()) } ?: ""
    }

    private fun startVideo(uri: Uri) {
        stopAll()
        preview.visibility = View.GONE
        videoFrame.visibility = View.VISIBLE
        lifecycleScope.launch {
            val source = withContext(Dispatchers.IO) { runCatching { VideoFrameSource(this@MainActivity, uri) } }
                .getOrElse { status.text = it.message; return@launch }
            val s = openSession(source.fps) ?: return@launch source.close()
            session = s
            status.text = "video: ${source.frameCount} frames at %.1f fps".format(source.fps)
            videoRunning.set(true)
            // Decode and classify on the model thread, one frame after the other (no frame dropped).
            s.executor.execute {
                try {
                    for (i in 0 until source.frameCount) {
                        if (!videoRunning.get()) break
                        val frame = source.frame(i)
                        s.process(frame, i / source.fps)
                        if (i % 2 == 0) showFrame(frame)
                    }
                } catch (e: Exception) {
                    Log.e(LOG_TAG, "video stopped", e)
                    runOnUiThread { status.text = e.message }
                } finally {
                    source.close()
                }
            }
        }
    }

    private fun showFrame(frame: org.echoweave.core.Frames) {
        val pixels = IntArray(frame.h * frame.w) { i ->
            val r = frame.data[3 * i].toInt() and 0xFF
            val g = frame.data[3 * i + 1].toInt() and 0xFF
            val b = frame.data[3 * i + 2].toInt() and 0xFF
            (0xFF shl 24) or (r shl 16) or (g shl 8) or b
        }
        val bitmap = Bitmap.createBitmap(pixels, frame.w, frame.h, Bitmap.Config.ARGB_8888)
        runOnUiThread { videoFrame.setImageBitmap(bitmap) }
    }

    private fun startCamera() {
        stopAll()
        videoFrame.visibility = View.GONE
        preview.visibility = View.VISIBLE
        lifecycleScope.launch {
            val s = openSession(fps = 30.0) ?: return@launch
            session = s
            val future = ProcessCameraProvider.getInstance(this@MainActivity)
            future.addListener({
                val provider = future.get()
                cameraProvider = provider
                val previewUseCase = Preview.Builder().build().also { it.setSurfaceProvider(preview.surfaceProvider) }
                // KEEP_ONLY_LATEST: while the model is busy, newer camera frames replace older ones.
                val analysis = ImageAnalysis.Builder()
                    .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                    .build()
                analysis.setAnalyzer(s.executor) { image ->
                    try {
                        s.process(imageProxyToGray(image), image.imageInfo.timestamp / 1e9)
                    } finally {
                        image.close()
                    }
                }
                provider.unbindAll()
                provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, previewUseCase, analysis)
                status.text = "camera: streaming (sector estimated from the first frames)"
            }, ContextCompat.getMainExecutor(this@MainActivity))
        }
    }

    private fun stopAll() {
        videoRunning.set(false)
        cameraProvider?.unbindAll()
        cameraProvider = null
        session?.close()
        session = null
    }
}
