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

private val REQUIRED = listOf(
    "schema_version", "model_id", "model", "classes", "frames", "aggregation", "uncertain_threshold",
    "preprocessing", "input_spec", "methods", "artifacts",
)
private val ARTIFACT_REQUIRED = listOf("id", "format", "backend", "precision", "files", "methods")

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
 * (model config, toolchain, parity, metrics).
 */
data class Manifest(
    val schemaVersion: Int,
    val modelId: String,
    val modelVersion: String,
    val classes: List<ViewClass>,
    val frames: Int,
    val aggregation: String,
    val uncertainThreshold: Double,
    val preprocessing: PreprocessSpec,
    val inputSpec: Map<String, Any?>,
    val methods: List<String>,
    val artifacts: List<Artifact>,
    val raw: Map<String, Any?>,
) {
    val classNames: List<String> get() = classes.map { it.name }

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

        /** Validate a parsed JSON value (the rules of validate_manifest) and build a [Manifest]. */
        fun fromJson(data: Any?, where: String = MANIFEST_FILE): Manifest {
            @Suppress("UNCHECKED_CAST")
            val m = data as? Map<String, Any?>
                ?: throw ManifestException("$where: a manifest is a JSON object, got ${jsonTypeName(data)}")
            val missing = REQUIRED.filter { it !in m }
            if (missing.isNotEmpty()) throw ManifestException("$where: missing keys $missing")
            val version = m["schema_version"]
            if (version !is Long || version < 1) {
                throw ManifestException("$where: schema_version must be a positive integer, got ${Json.write(version)}")
            }
            if (version > SCHEMA_VERSION) {
                throw ManifestException("$where: manifest schema $version is newer than this app understands " +
                    "($SCHEMA_VERSION); update the app")
            }
            val classes = parseClasses(m["classes"], where)
            val aggregation = m["aggregation"]
            if (aggregation !is String || aggregation !in AGGREGATIONS) {
                throw ManifestException("$where: aggregation must be one of $AGGREGATIONS, got ${Json.write(aggregation)}")
            }
            val frames = m["frames"]
            if (frames !is Long || frames < 1) throw ManifestException("$where: frames must be a positive integer")
            val thr = when (val t = m["uncertain_threshold"]) { is Long -> t.toDouble(); is Double -> t; else -> null }
            if (thr == null || !(thr >= 0.0 && thr <= 1.0)) {
                throw ManifestException("$where: uncertain_threshold must be in [0, 1], got ${Json.write(m["uncertain_threshold"])}")
            }
            val artifacts = parseArtifacts(m.list("artifacts", where), where)
            val spec = try {
                PreprocessSpec.fromJson(m.obj("preprocessing", where))
            } catch (e: IllegalArgumentException) {
                if (e is ManifestException) throw e
                throw ManifestException("$where: preprocessing: ${e.message}")
            }
            return Manifest(
                schemaVersion = version.toInt(),
                modelId = m.str("model_id", where),
                modelVersion = m["model_version"] as? String ?: "",
                classes = classes,
                frames = frames.toInt(),
                aggregation = aggregation,
                uncertainThreshold = thr,
                preprocessing = spec,
                inputSpec = m.obj("input_spec", where),
                methods = m.list("methods", where).map { it as? String ?: throw ManifestException("$where: methods must be strings") },
                artifacts = artifacts,
                raw = m,
            )
        }

        private fun parseClasses(value: Any?, where: String): List<ViewClass> {
            val bad = ManifestException("$where: classes must be a non-empty list with ids 0..K-1 in order")
            val list = value as? List<*> ?: throw bad
            if (list.isEmpty()) throw bad
            return list.mapIndexed { i, c ->
                val obj = c as? Map<*, *> ?: throw bad
                // Python compares ids with ==, so 1.0 counts as 1 there; do the same.
                val id = when (val v = obj["id"]) { is Long -> v.toDouble(); is Double -> v; else -> throw bad }
                if (id != i.toDouble()) throw bad
                ViewClass(i, obj["name"] as? String ?: throw ManifestException("$where: class $i has no string 'name'"))
            }
        }

        private fun parseArtifacts(list: List<Any?>, where: String): List<Artifact> {
            val ids = HashSet<String>()
            return list.mapIndexed { i, a ->
                @Suppress("UNCHECKED_CAST")
                val art = a as? Map<String, Any?> ?: throw ManifestException("$where: artifact $i must be an object")
                val miss = ARTIFACT_REQUIRED.filter { it !in art }
                if (miss.isNotEmpty()) throw ManifestException("$where: artifact $i misses $miss")
                val id = art.str("id", where)
                if (!ids.add(id)) throw ManifestException("$where: duplicate artifact id '$id'")
                val format = art["format"]
                val precision = art["precision"]
                if (format !in FORMATS || precision !in PRECISIONS) {
                    throw ManifestException("$where: artifact '$id' has format ${Json.write(format)} / precision " +
                        "${Json.write(precision)}; known $FORMATS / $PRECISIONS")
                }
                val files = art.list("files", where).map { f ->
                    @Suppress("UNCHECKED_CAST")
                    val fo = f as? Map<String, Any?> ?: throw ManifestException("$where: artifact '$id' files must be objects")
                    ArtifactFile(fo.str("path", where), fo["sha256"] as? String ?: "", fo["bytes"] as? Long)
                }
                val paths = files.map { it.path }.toSet()
                val methods = LinkedHashMap<String, MethodEntry>()
                for ((name, mv) in art.obj("methods", where)) {
                    val file = (mv as? Map<*, *>)?.get("file")
                    if (name !in METHODS || file !is String || file !in paths) {
                        throw ManifestException("$where: artifact '$id' method '$name' must be one of $METHODS " +
                            "and name one of the artifact's files")
                    }
                    methods[name] = MethodEntry(file, (mv["entry"] as? String) ?: name)
                }
                for (f in files) {
                    val parts = f.path.split('/').filter { it.isNotEmpty() }
                    if (f.path.startsWith("/") || ".." in parts) {
                        throw ManifestException("$where: artifact file path '${f.path}' must be relative to the folder")
                    }
                }
                Artifact(id, format as String, art["backend"]?.toString() ?: "", precision as String, files, methods,
                    art["input_dtype"] as? String ?: "float32", art["output_dtype"] as? String ?: "float32",
                    art["notes"] as? String ?: "")
            }
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
