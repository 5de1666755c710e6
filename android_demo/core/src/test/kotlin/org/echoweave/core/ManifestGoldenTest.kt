package org.echoweave.core

import java.io.File
import java.nio.file.Files
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/** The Kotlin manifest check accepts and rejects exactly what edge/manifest.py's validate_manifest does. */
class ManifestGoldenTest {
    private val cases = Golden.json("manifest/cases.json")["cases"].asList().map { it.asMap() }

    @Test
    fun sameVerdictAsPythonOnEveryCase() {
        assertTrue(cases.size >= 20)
        for (case in cases) {
            val name = case["name"] as String
            val text = Json.write(case["manifest"])
            if (case["valid"] == true) {
                Manifest.parse(text)
            } else {
                val e = assertThrows(name, ManifestException::class.java) { Manifest.parse(text) }
                assertTrue("$name: ${e.message}", e.message!!.startsWith("manifest.json: "))
            }
        }
    }

    @Test
    fun messagesAreThePythonMessages() {
        // Word for word, but for who is to be upgraded when the schema is newer (the app, not echoweave).
        for (case in cases.filter { it["valid"] == false }) {
            val python = (case["error"] as String)
                .replace("this echoweave understands", "this app understands").replace("upgrade echoweave", "update the app")
            val kotlin = try {
                Manifest.parse(Json.write(case["manifest"])); fail("${case["name"]} accepted"); ""
            } catch (e: ManifestException) { e.message!! }
            assertEquals(case["name"] as String, python, kotlin)
        }
    }

    @Test
    fun frameStrideDefaultsToOneAndSetsTheWindowSpan() {
        val base = Golden.json("manifest/example_manifest.json")
        val plain = Manifest.fromJson(base)
        assertEquals(1, plain.frameStride)
        assertEquals(4, plain.windowSpan)
        val strided = Manifest.fromJson(base + ("frame_stride" to 3L))
        assertEquals(3, strided.frameStride)
        assertEquals(10, strided.windowSpan)  // (T - 1) * k + 1 with T = 4
        assertEquals(3, ModelInfo.from(strided).frameStride)
        assertEquals(10, ModelInfo.from(strided).span)
    }

    @Test
    fun pythonReprOfValuesInMessages() {
        assertEquals("[1, 'a', None, True, 2.5, {'k': []}]", pyRepr(listOf(1L, "a", null, true, 2.5, mapOf("k" to emptyList<Any>()))))
        assertEquals("\"it's\"", pyRepr("it's"))
        assertEquals("1e-05", pyRepr(1e-5))
        assertEquals("1.5e+16", pyRepr(1.5e16))
        assertEquals("4.0", pyRepr(4.0))
        assertEquals("0.0001", pyRepr(1e-4))
    }

    @Test
    fun exampleFieldsAreRead() {
        val m = Manifest.parse(Golden.text("manifest/example_manifest.json"))
        assertEquals("tfw_tiny", m.modelId)
        assertEquals(12, m.classes.size)
        assertEquals("APICAL_5C", m.classNames[0])
        assertEquals(4, m.frames)
        assertEquals(64, m.featureDim)
        assertEquals(32, m.inputSize)
        assertEquals(PreprocessSpec(resize = 36, crop = 32), m.preprocessing)
        assertEquals(0.5, m.uncertainThreshold, 0.0)
        val litert = m.findArtifacts(format = "litert").single()
        assertEquals("int8", litert.precision)
        assertEquals(MethodEntry("tfw_tiny_q8.tflite", "embed_frame"), litert.methods["embed_frame"])
        assertEquals("one multi-method program \u00e9", m.artifacts[0].notes)
        assertEquals(listOf("executorch_xnnpack_fp32"), m.findArtifacts(precision = "fp32").map { it.id })
    }

    @Test
    fun preprocessingSpecRejectsUnknownKeysAndBadValues() {
        val base = Golden.json("manifest/example_manifest.json")
        for (spec in listOf(mapOf("resize" to 10L, "crop" to 20L), mapOf("crop_size" to 3L), mapOf("grayscale" to 1L),
            mapOf("scale" to -1.0))) {
            val e = assertThrows(ManifestException::class.java) { Manifest.fromJson(base + ("preprocessing" to spec)) }
            assertTrue(e.message!!, e.message!!.contains("preprocessing"))
        }
    }

    @Test
    fun artifactFilesAreVerifiedBySizeAndSha256() {
        val dir = Files.createTempDirectory("ew-manifest").toFile()
        try {
            val f = File(dir, "m.pte").apply { writeText("hello") }
            val sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"  // sha256("hello")
            assertEquals(sha, sha256File(f))
            val art = Artifact("a", "executorch", "xnnpack", "fp32", listOf(ArtifactFile("m.pte", sha, 5)), emptyMap(),
                "float32", "float32", "")
            verifyArtifactFiles(dir, art)
            f.writeText("hellO")
            assertTrue(assertThrows(ManifestException::class.java) { verifyArtifactFiles(dir, art) }.message!!.contains("tampered"))
            f.writeText("hello!")
            assertTrue(assertThrows(ManifestException::class.java) { verifyArtifactFiles(dir, art) }.message!!.contains("size 6"))
            f.delete()
            assertTrue(assertThrows(ManifestException::class.java) { verifyArtifactFiles(dir, art) }.message!!.contains("missing"))
        } finally {
            dir.deleteRecursively()
        }
    }
}
