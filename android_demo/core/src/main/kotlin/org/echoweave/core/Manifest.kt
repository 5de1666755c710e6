/*
 * manifest.json: the contract between export, the Python edge, the benchmarks and this app.
 *
 * The schema is defined in echoweave's edge/manifest.py (read its docstring); `Manifest.parse`
 * applies the same checks as `validate_manifest` there, so a manifest the Python edge rejects is
 * rejected here with a message naming the file and the problem. The golden test
 * ManifestGoldenTest feeds both sides the same valid and broken manifests.
 */
package org.echoweave.core

import java.io.File
import java.security.MessageDigest

/** A manifest is missing, malformed, from a newer schema, or names a bad file. */
class ManifestException(message: String) : IllegalArgumentException(message)

const val SCHEMA_VERSION = 1
const val MANIFEST_FILE = "manifest.json"
val FORMATS = listOf("executorch", "onnx", "litert", "coreml")
val PRECISIONS = listOf("fp32", "fp16", "int8")
val METHODS = listOf("forward", "embed_frame", "classify_window")
val AGGREGATIONS = listOf("window", "mean_vote")


/** One view class; [id] is its index in the model's logits. */
data class ViewClass(val id: Int, val name: String)

/** One file of an artifact; [path] is relative to the manifest's folder. */
data class ArtifactFile(val path: String, val sha256: String, val bytes: Long?)

/** Where a method lives: [file] of the artifact and [entry] inside it (method, signature key, ...). */
data class MethodEntry(val file: String, val entry: String)

/** One exported artifact (format x backend x precision). */
data class Artifact(
    val id: String,
    val format: String,
    val backend: String,
    val precision: String,
    val files: List<ArtifactFile>,
    val methods: Map<String, MethodEntry>,
    val inputDtype: String,
    val outputDtype: String,
    val notes: String,
)

/**
 * The parsed manifest. [raw] keeps the whole JSON object for fields the app only displays
 * (model config, toolchain, parity, metrics). [frames] is T, the features one window holds;
 * [frameStride] k the model's step between them in the clip, so a window spans [windowSpan] frames.
 * [fusion] is the optional `fusion` entry of a model trained with the evidential loss (its clips
 * are fused by [Evidential]), null for other models.
 */
data class Manifest(
    val schemaVersion: Int,
    val modelId: String,
    val modelVersion: String,
    val classes: List<ViewClass>,
    val frames: Int,
    val frameStride: Int,
    val aggregation: String,
    val uncertainThreshold: Double,
    val preprocessing: PreprocessSpec,
    val inputSpec: Map<String, Any?>,
    val methods: List<String>,
    val artifacts: List<Artifact>,
    val raw: Map<String, Any?>,
    val fusion: FusionSpec? = null,
) {
    val classNames: List<String> get() = classes.map { it.name }

    /** Frames of the clip one window covers, (T - 1) * k + 1 (Classifier.span in Python). */
    val windowSpan: Int get() = (frames - 1) * frameStride + 1

    /** Feature length D of `embed_frame`'s output (input_spec.feature_dim). */
    val featureDim: Int
        get() = (inputSpec["feature_dim"] as? Long)?.toInt()
            ?: throw ManifestException("$MANIFEST_FILE: input_spec.feature_dim is missing")

    /** Side of the square model input (input_spec.input_size, else the crop size). */
    val inputSize: Int get() = (inputSpec["input_size"] as? Long)?.toInt() ?: preprocessing.crop

    /** Artifacts matching a format and/or precision, in manifest order (as find_artifact). */
    fun findArtifacts(format: String? = null, precision: String? = null): List<Artifact> =
        artifacts.filter { (format == null || it.format == format) && (precision == null || it.precision == precision) }

    companion object {
        /** Parse and validate manifest text; [where] names the file in error messages. */
        fun parse(text: String, where: String = MANIFEST_FILE): Manifest {
            val data = try {
                Json.parse(text, where)
            } catch (e: JsonException) {
                throw ManifestException("$where: not valid JSON (${e.message})")
            }
            return fromJson(data, where)
        }

        /** Read and validate `folder/manifest.json`. */
        fun read(folder: File): Manifest {
            val file = File(folder, MANIFEST_FILE)
            if (!file.isFile) throw ManifestException("$file: no manifest here (is this an artifacts/<model_id> folder?)")
            return parse(file.readText(), file.path)
        }

        /**
         * Validate a parsed JSON value as validate_manifest does (the JSON Schema in [ManifestSchema],
         * then the rules that span fields, in the same order and with the same messages) and build a [Manifest].
         */
        fun fromJson(data: Any?, where: String = MANIFEST_FILE): Manifest {
            @Suppress("UNCHECKED_CAST")
            val m = data as? Map<String, Any?>
                ?: throw ManifestException("$where: a manifest is a JSON object, got ${jsonTypeName(data)}")
            val version = m["schema_version"]
            if (version is Long && version > SCHEMA_VERSION) {
                throw ManifestException("$where: manifest schema $version is newer than this app understands " +
                    "($SCHEMA_VERSION); update the app")
            }
            ManifestSchema.firstError(m)?.let { e ->
                throw ManifestException("$where: ${if (e.field.isEmpty()) "" else e.field + ": "}${oneLine(e.message)}")
            }
            checkConsistency(m, where)
            val classes = m.list("classes", where).mapIndexed { i, c ->
                ViewClass(i, (c as Map<*, *>)["name"] as String)
            }
            val spec = PreprocessSpec.fromJson(m.obj("preprocessing", where))
            val thr = m["uncertain_threshold"].let { if (it is Long) it.toDouble() else it as Double }
            return Manifest(
                schemaVersion = (version as Long).toInt(),
                modelId = m.str("model_id", where),
                modelVersion = m["model_version"] as? String ?: "",
                classes = classes,
                frames = m.long("frames", where).toInt(),
                frameStride = (m["frame_stride"] as? Long)?.toInt() ?: 1,
                aggregation = m.str("aggregation", where),
                uncertainThreshold = thr,
                preprocessing = spec,
                inputSpec = m.obj("input_spec", where),
                methods = m.list("methods", where).map { it as String },
                artifacts = m.list("artifacts", where).map { parseArtifact(it) },
                raw = m,
                fusion = (m["fusion"] as? Map<*, *>)?.let { f ->
                    @Suppress("UNCHECKED_CAST")
                    FusionSpec.fromJson(f as Map<String, Any?>)
                },
            )
        }

        /** The rules the schema cannot state (_check_consistency in edge/manifest.py): they relate two fields. */
        @Suppress("UNCHECKED_CAST")
        private fun checkConsistency(m: Map<String, Any?>, where: String) {
            fun bad(problem: String): Nothing = throw ManifestException("$where: $problem")
            val classes = m["classes"] as List<Map<String, Any?>>
            val frames = m["frames"] as Long
            val spec = m["input_spec"] as Map<String, Any?>
            val ids = classes.map { it["id"] as Long }
            if (ids != ids.indices.map { it.toLong() }) {
                bad("classes: ids must be 0..${classes.size - 1} in order, got ${oneLine(pyRepr(ids), 80)}")
            }
            if (classes.map { it["name"] }.toSet().size != classes.size) bad("classes: names must be unique")
            if (spec["frames"] != frames) bad("frames is $frames but input_spec.frames is ${spec["frames"]}")
            if (spec["num_classes"] != classes.size.toLong()) {
                bad("${classes.size} classes but input_spec.num_classes is ${spec["num_classes"]}")
            }
            for ((method, io) in spec["methods"] as Map<String, Map<String, Any?>>) {
                for (out in io["outputs"] as List<Map<String, Any?>>) {
                    val shape = out["shape"] as List<*>
                    if (out["name"] == "logits" && shape.last() != classes.size.toLong()) {
                        bad("input_spec.methods.$method outputs ${shape.last()} logits but there are ${classes.size} classes")
                    }
                }
                for (inp in io["inputs"] as List<Map<String, Any?>>) {
                    val shape = inp["shape"] as List<*>
                    if ((inp["layout"] as? String ?: "").startsWith("NT") && shape.getOrNull(1) != frames) {
                        bad("input_spec.methods.$method takes ${shape.getOrNull(1) ?: "no"} frames but frames is $frames")
                    }
                }
            }
            try {
                PreprocessSpec.fromJson(m["preprocessing"] as Map<String, Any?>)
            } catch (e: IllegalArgumentException) {
                bad("preprocessing: ${e.message}")
            }
            val seen = HashSet<String>()
            (m["artifacts"] as List<Map<String, Any?>>).forEachIndexed { i, art ->
                val id = art["id"] as String
                if (!seen.add(id)) bad("duplicate artifact id ${pyRepr(id)}")
                val paths = (art["files"] as List<Map<String, Any?>>).map { it["path"] as String }
                for (path in paths) {
                    if (path.startsWith("/") || ".." in path.split('/') || '\\' in path) {
                        bad("artifacts[$i] ($id): file path ${pyRepr(path)} must be relative to the folder")
                    }
                }
                for ((name, entry) in art["methods"] as Map<String, Map<String, Any?>>) {
                    if (entry["file"] !in paths) {
                        bad("artifacts[$i] ($id): method ${pyRepr(name)} names file ${pyRepr(entry["file"])}, " +
                            "which is not one of the artifact's files")
                    }
                }
            }
        }

        /** Build an [Artifact] from an entry the checks above accepted. */
        @Suppress("UNCHECKED_CAST")
        private fun parseArtifact(a: Any?): Artifact {
            val art = a as Map<String, Any?>
            val files = (art["files"] as List<Map<String, Any?>>).map {
                ArtifactFile(it["path"] as String, it["sha256"] as String, it["bytes"] as? Long)
            }
            val methods = LinkedHashMap<String, MethodEntry>()
            for ((name, entry) in art["methods"] as Map<String, Map<String, Any?>>) {
                methods[name] = MethodEntry(entry["file"] as String, entry["entry"] as? String ?: name)
            }
            return Artifact(art["id"] as String, art["format"] as String, art["backend"] as String,
                art["precision"] as String, files, methods, art["input_dtype"] as? String ?: "float32",
                art["output_dtype"] as? String ?: "float32", art["notes"] as? String ?: "")
        }

        /** One line, at most [limit] characters (_short in edge/manifest.py). */
        private fun oneLine(text: String, limit: Int = 160): String {
            val t = text.split(Regex("\\s+")).filter { it.isNotEmpty() }.joinToString(" ")
            return if (t.length <= limit) t else t.take(limit - 3) + "..."
        }

        private fun jsonTypeName(v: Any?): String = when (v) {
            null -> "NoneType"; is List<*> -> "list"; is String -> "str"; is Boolean -> "bool"
            is Long -> "int"; is Double -> "float"; else -> v::class.simpleName ?: "value"
        }
    }
}

/**
 * Check every file of an artifact exists and matches its recorded size and sha256
 * (verify_artifact_files in edge/manifest.py).
 *
 * @throws ManifestException a file is absent, or was changed since export.
 */
fun verifyArtifactFiles(folder: File, artifact: Artifact) {
    for (f in artifact.files) {
        val p = File(folder, f.path)
        if (!p.exists()) throw ManifestException("$p: artifact file named in the manifest is missing")
        val size = fileBytes(p)
        if (f.bytes != null && size != f.bytes) {
            throw ManifestException("$p: size $size differs from the manifest's ${f.bytes} (truncated or replaced)")
        }
        val digest = sha256File(p)
        if (digest != f.sha256) {
            throw ManifestException("$p: sha256 ${digest.take(12)}... does not match the manifest's " +
                "${f.sha256.take(12)}... (file changed or tampered with)")
        }
    }
}

/** Size of a file, or the total size of the files under a folder (an .mlpackage). */
fun fileBytes(path: File): Long =
    if (path.isDirectory) path.walkTopDown().filter { it.isFile }.sumOf { it.length() } else path.length()

/**
 * Hex sha256 of a file, or of every file under a folder in sorted order with each relative
 * path hashed before its bytes (sha256_file in edge/manifest.py; Python sorts paths part by part).
 */
fun sha256File(path: File): String {
    val md = MessageDigest.getInstance("SHA-256")
    val files = if (path.isDirectory) {
        path.walkTopDown().filter { it.isFile }.sortedWith { a, b -> compareParts(a.relativeTo(path), b.relativeTo(path)) }.toList()
    } else listOf(path)
    val buf = ByteArray(1 shl 20)
    for (f in files) {
        if (path.isDirectory) md.update(f.relativeTo(path).invariantSeparatorsPath.toByteArray())
        f.inputStream().use { s -> while (true) { val n = s.read(buf); if (n < 0) break; md.update(buf, 0, n) } }
    }
    return md.digest().joinToString("") { "%02x".format(it) }
}

private fun compareParts(a: File, b: File): Int {
    val pa = a.invariantSeparatorsPath.split('/')
    val pb = b.invariantSeparatorsPath.split('/')
    for (i in 0 until minOf(pa.size, pb.size)) {
        val c = pa[i].compareTo(pb[i])
        if (c != 0) return c
    }
    return pa.size - pb.size
}
