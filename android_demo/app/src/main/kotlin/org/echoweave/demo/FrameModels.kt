/*
 * The two exported methods (`embed_frame`, `classify_window`) behind the core's FrameModel,
 * for the two Android runtimes the exporter writes: ExecuTorch (one multi-method .pte) and
 * LiteRT (one .tflite with a signature per method). Which file and entry hold each method is
 * read from manifest.json; nothing about the model is typed here.
 */
package org.echoweave.demo

import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import org.echoweave.core.Artifact
import org.echoweave.core.FloatTensor
import org.echoweave.core.FrameModel
import org.echoweave.core.Manifest
import org.echoweave.core.ManifestException
import org.echoweave.core.verifyArtifactFiles
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor
import org.tensorflow.lite.Interpreter

/** The runtimes this app can open, by the manifest's artifact `format`. */
enum class RuntimeChoice(val format: String) { EXECUTORCH("executorch"), LITERT("litert") }

/** A [FrameModel] that also owns native resources. */
interface ClosableFrameModel : FrameModel, AutoCloseable

private val STREAM_METHODS = listOf("embed_frame", "classify_window")

/**
 * Pick the first artifact of [runtime]'s format that has both streaming methods, check its files
 * against the manifest's sha256 and open it.
 *
 * @throws ManifestException no such artifact (the message lists what the manifest has), a file
 *     missing or changed, or quantized I/O this demo does not feed.
 */
fun openFrameModel(folder: File, manifest: Manifest, runtime: RuntimeChoice, threads: Int = 4): ClosableFrameModel {
    val artifact = manifest.findArtifacts(format = runtime.format).firstOrNull { a -> STREAM_METHODS.all { it in a.methods } }
        ?: throw ManifestException("$folder: no ${runtime.format} artifact with embed_frame and classify_window; " +
            "the manifest has: ${manifest.artifacts.joinToString { "${it.id} (${it.format} ${it.precision})" }}")
    if (artifact.inputDtype != "float32" || artifact.outputDtype != "float32") {
        throw ManifestException("$folder: artifact ${artifact.id} has ${artifact.inputDtype}/${artifact.outputDtype} I/O; " +
            "this demo feeds float32 (export with float I/O)")
    }
    verifyArtifactFiles(folder, artifact)
    return when (runtime) {
        RuntimeChoice.EXECUTORCH -> ExecuTorchFrameModel(folder, artifact)
        RuntimeChoice.LITERT -> LiteRtFrameModel(folder, artifact, threads)
    }
}

/** ExecuTorch: `Module.execute(method, EValue)` on the .pte file(s) named by the manifest. */
class ExecuTorchFrameModel(folder: File, artifact: Artifact) : ClosableFrameModel {
    override val runtimeName = "executorch"
    private val embed = artifact.methods.getValue("embed_frame")
    private val classify = artifact.methods.getValue("classify_window")
    // Usually one multi-method program holds both methods; load each distinct file once.
    private val modules: Map<String, Module> = setOf(embed.file, classify.file)
        .associateWith { Module.load(File(folder, it).absolutePath) }

    override fun embedFrame(frame: FloatTensor): FloatArray = run(embed.file, embed.entry, frame)

    override fun classifyWindow(features: FloatTensor): FloatArray = run(classify.file, classify.entry, features)

    private fun run(file: String, method: String, x: FloatTensor): FloatArray {
        val input = Tensor.fromBlob(x.data, LongArray(x.shape.size) { x.shape[it].toLong() })
        val outputs = modules.getValue(file).execute(method, EValue.from(input))
        return outputs[0].toTensor().dataAsFloatArray  // (1, D) or (1, K), flattened
    }

    override fun close() = modules.values.forEach { it.destroy() }
}

/** LiteRT: the Interpreter's signature runner, one signature per method. */
class LiteRtFrameModel(folder: File, artifact: Artifact, threads: Int) : ClosableFrameModel {
    override val runtimeName = "litert"
    private val embed = artifact.methods.getValue("embed_frame")
    private val classify = artifact.methods.getValue("classify_window")
    private val interpreters: Map<String, Interpreter> = setOf(embed.file, classify.file)
        .associateWith { Interpreter(File(folder, it), Interpreter.Options().setNumThreads(threads)) }

    override fun embedFrame(frame: FloatTensor): FloatArray = run(embed.file, embed.entry, frame)

    override fun classifyWindow(features: FloatTensor): FloatArray = run(classify.file, classify.entry, features)

    private fun run(file: String, signature: String, x: FloatTensor): FloatArray {
        val interpreter = interpreters.getValue(file)
        val inputName = interpreter.getSignatureInputs(signature).single()
        val outputName = interpreter.getSignatureOutputs(signature).single()
        val input = ByteBuffer.allocateDirect(x.data.size * 4).order(ByteOrder.nativeOrder())
        input.asFloatBuffer().put(x.data)
        val outTensor = interpreter.getOutputTensorFromSignature(outputName, signature)
        val output = ByteBuffer.allocateDirect(outTensor.numBytes()).order(ByteOrder.nativeOrder())
        interpreter.runSignature(mapOf(inputName to input), mapOf(outputName to output), signature)
        output.rewind()
        return FloatArray(outTensor.numElements()).also { output.asFloatBuffer().get(it) }
    }

    override fun close() = interpreters.values.forEach { it.close() }
}
