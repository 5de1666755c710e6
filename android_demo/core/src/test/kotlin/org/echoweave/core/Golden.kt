/*
 * Test helpers: read the golden fixtures written by tests/golden/make_golden.py (JSON and numpy
 * .npy files on the test classpath under /golden) and compare arrays with a tolerance.
 */
package org.echoweave.core

import java.nio.ByteBuffer
import java.nio.ByteOrder
import kotlin.math.abs
import org.junit.Assert.assertEquals
import org.junit.Assert.fail

/** A numpy array read from an .npy file (format 1.0/2.0, little-endian, C order). */
class Npy(val dtype: String, val shape: IntArray, val bytes: ByteArray) {
    val size: Int get() = shape.fold(1) { a, b -> a * b }

    fun floats(): FloatArray {
        check(dtype == "<f4") { "expected float32, got $dtype" }
        val fb = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
        return FloatArray(size).also { fb.get(it) }
    }

    fun ints(): IntArray = when (dtype) {
        "<i4" -> IntArray(size).also { ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(it) }
        "<i8" -> LongArray(size).also { ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(it) }
            .map { it.toInt() }.toIntArray()
        "|u1", "|b1" -> IntArray(size) { bytes[it].toInt() and 0xFF }
        else -> error("expected an integer array, got $dtype")
    }

    /** uint8 pixels as [Frames]: (T, H, W) gray or (T, H, W, 3) RGB. */
    fun frames(): Frames {
        check(dtype == "|u1") { "expected uint8, got $dtype" }
        return when (shape.size) {
            3 -> Frames(shape[0], shape[1], shape[2], 1, bytes)
            4 -> Frames(shape[0], shape[1], shape[2], shape[3], bytes)
            else -> error("frames must be 3-d or 4-d, got ${shape.toList()}")
        }
    }

    companion object {
        fun parse(data: ByteArray, name: String): Npy {
            val magic = byteArrayOf(0x93.toByte(), 'N'.code.toByte(), 'U'.code.toByte(), 'M'.code.toByte(), 'P'.code.toByte(), 'Y'.code.toByte())
            check(data.copyOfRange(0, 6).contentEquals(magic)) { "$name: not an .npy file" }
            val major = data[6].toInt()
            val bb = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN)
            val (headerLen, start) = if (major == 1) (bb.getShort(8).toInt() and 0xFFFF) to 10 else bb.getInt(8) to 12
            val header = String(data, start, headerLen, Charsets.ISO_8859_1)
            val descr = Regex("'descr':\\s*'([^']+)'").find(header)?.groupValues?.get(1) ?: error("$name: no descr")
            check("'fortran_order': False" in header) { "$name: Fortran order not supported" }
            val shapeText = Regex("'shape':\\s*\\(([^)]*)\\)").find(header)?.groupValues?.get(1) ?: error("$name: no shape")
            val shape = shapeText.split(',').map { it.trim() }.filter { it.isNotEmpty() }.map { it.toInt() }.toIntArray()
            return Npy(descr, shape, data.copyOfRange(start + headerLen, data.size))
        }
    }
}

object Golden {
    fun bytes(name: String): ByteArray =
        Golden::class.java.getResourceAsStream("/golden/$name")?.use { it.readBytes() }
            ?: error("golden file $name is not on the test classpath (run tests/golden/make_golden.py)")

    fun text(name: String): String = String(bytes(name), Charsets.UTF_8)

    @Suppress("UNCHECKED_CAST")
    fun json(name: String): Map<String, Any?> = Json.parse(text(name), name) as Map<String, Any?>

    fun npy(name: String): Npy = Npy.parse(bytes(name), name)
}

@Suppress("UNCHECKED_CAST")
fun Any?.asMap(): Map<String, Any?> = this as Map<String, Any?>

@Suppress("UNCHECKED_CAST")
fun Any?.asList(): List<Any?> = this as List<Any?>

fun Any?.asDouble(): Double = when (this) { is Long -> toDouble(); is Double -> this; else -> error("not a number: $this") }

fun Any?.asInt(): Int = (this as Long).toInt()

fun Any?.asDoubles(): DoubleArray = asList().map { it.asDouble() }.toDoubleArray()

fun assertClose(what: String, expected: DoubleArray, actual: DoubleArray, atol: Double = 1e-5) {
    assertEquals("$what: length", expected.size, actual.size)
    var worst = 0.0
    var at = -1
    for (i in expected.indices) {
        val d = abs(expected[i] - actual[i])
        if (!(d <= worst)) { worst = d; at = i }
    }
    if (worst > atol) fail("$what: max |diff| $worst > $atol at $at (expected ${expected[at]}, got ${actual[at]})")
}

fun assertClose(what: String, expected: FloatArray, actual: FloatArray, atol: Double = 1e-5) =
    assertClose(what, DoubleArray(expected.size) { expected[it].toDouble() }, DoubleArray(actual.size) { actual[it].toDouble() }, atol)
