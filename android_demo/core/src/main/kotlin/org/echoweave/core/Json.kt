/*
 * A small JSON reader and writer (RFC 8259), so the core needs nothing but the Kotlin stdlib.
 *
 * Values map to plain Kotlin types: object -> LinkedHashMap<String, Any?> (key order kept),
 * array -> List<Any?>, string -> String, true/false -> Boolean, null -> null, and numbers ->
 * Long when written without fraction or exponent (and in range), else Double. That split lets
 * the manifest check "is an integer" the way Python's isinstance(x, int) does. Like Python's json
 * module, the reader accepts NaN, Infinity and -Infinity.
 */
package org.echoweave.core

/** Malformed JSON; the message names the source and the character offset. */
class JsonException(message: String) : IllegalArgumentException(message)

object Json {
    /** Parse one JSON document; [source] (a file name) is used only in error messages. */
    fun parse(text: String, source: String = "json"): Any? {
        val reader = Reader(text, source)
        reader.skipSpace()
        val value = reader.readValue(0)
        reader.skipSpace()
        if (!reader.atEnd()) reader.fail("unexpected trailing text")
        return value
    }

    /** Compact JSON text of a value built from the types [parse] returns (plus Int, Float, Array). */
    fun write(value: Any?): String = StringBuilder().also { writeTo(it, value) }.toString()

    private fun writeTo(out: StringBuilder, value: Any?) {
        when (value) {
            null -> out.append("null")
            is String -> writeString(out, value)
            is Boolean -> out.append(value)
            is Int, is Long -> out.append(value)
            is Float -> writeFinite(out, value.toDouble(), value.toString())
            is Double -> writeFinite(out, value, value.toString())
            is Map<*, *> -> {
                out.append('{')
                value.entries.forEachIndexed { i, (k, v) ->
                    if (i > 0) out.append(',')
                    writeString(out, k.toString())
                    out.append(':')
                    writeTo(out, v)
                }
                out.append('}')
            }
            is Iterable<*> -> {
                out.append('[')
                value.forEachIndexed { i, v -> if (i > 0) out.append(','); writeTo(out, v) }
                out.append(']')
            }
            is FloatArray -> writeTo(out, value.toList())
            is IntArray -> writeTo(out, value.toList())
            else -> throw JsonException("cannot write ${value::class.simpleName} as JSON")
        }
    }

    private fun writeFinite(out: StringBuilder, value: Double, text: String) {
        if (!value.isFinite()) throw JsonException("JSON has no NaN or infinity (got $value)")
        out.append(text)
    }

    private fun writeString(out: StringBuilder, s: String) {
        out.append('"')
        for (c in s) {
            when (c) {
                '"' -> out.append("\\\"")
                '\\' -> out.append("\\\\")
                '\n' -> out.append("\\n")
                '\r' -> out.append("\\r")
                '\t' -> out.append("\\t")
                else -> if (c < ' ') out.append("\\u%04x".format(c.code)) else out.append(c)
            }
        }
        out.append('"')
    }

    private class Reader(val text: String, val source: String) {
        var pos = 0

        fun atEnd() = pos >= text.length

        fun fail(problem: String): Nothing = throw JsonException("$source: invalid JSON at offset $pos: $problem")

        fun skipSpace() {
            while (pos < text.length && text[pos] in " \t\r\n") pos++
        }

        fun readValue(depth: Int): Any? {
            if (depth > 512) fail("nesting deeper than 512")
            if (atEnd()) fail("unexpected end of input")
            return when (val c = text[pos]) {
                '{' -> readObject(depth)
                '[' -> readArray(depth)
                '"' -> readString()
                't' -> readWord("true", true)
                'f' -> readWord("false", false)
                'n' -> readWord("null", null)
                // Python's json.dump writes these for non-finite floats (e.g. a parity number); accept them.
                'N' -> readWord("NaN", Double.NaN)
                'I' -> readWord("Infinity", Double.POSITIVE_INFINITY)
                else -> when {
                    text.startsWith("-Infinity", pos) -> readWord("-Infinity", Double.NEGATIVE_INFINITY)
                    c == '-' || c in '0'..'9' -> readNumber()
                    else -> fail("unexpected character '$c'")
                }
            }
        }

        private fun readWord(word: String, value: Any?): Any? {
            if (!text.startsWith(word, pos)) fail("expected '$word'")
            pos += word.length
            return value
        }

        private fun expect(c: Char) {
            if (atEnd() || text[pos] != c) fail("expected '$c'")
            pos++
        }

        private fun readObject(depth: Int): Map<String, Any?> {
            val out = LinkedHashMap<String, Any?>()
            expect('{')
            skipSpace()
            if (!atEnd() && text[pos] == '}') { pos++; return out }
            while (true) {
                skipSpace()
                if (atEnd() || text[pos] != '"') fail("expected a string key")
                val key = readString()
                skipSpace()
                expect(':')
                skipSpace()
                out[key] = readValue(depth + 1)  // a repeated key keeps the last value, as Python's json
                skipSpace()
                if (atEnd()) fail("unterminated object")
                if (text[pos] == ',') { pos++; continue }
                expect('}')
                return out
            }
        }

        private fun readArray(depth: Int): List<Any?> {
            val out = ArrayList<Any?>()
            expect('[')
            skipSpace()
            if (!atEnd() && text[pos] == ']') { pos++; return out }
            while (true) {
                skipSpace()
                out.add(readValue(depth + 1))
                skipSpace()
                if (atEnd()) fail("unterminated array")
                if (text[pos] == ',') { pos++; continue }
                expect(']')
                return out
            }
        }

        private fun readString(): String {
            expect('"')
            val sb = StringBuilder()
            while (true) {
                if (atEnd()) fail("unterminated string")
                val c = text[pos++]
                when {
                    c == '"' -> return sb.toString()
                    c == '\\' -> {
                        if (atEnd()) fail("unterminated escape")
                        when (val e = text[pos++]) {
                            '"' -> sb.append('"'); '\\' -> sb.append('\\'); '/' -> sb.append('/')
                            'b' -> sb.append('\b'); 'f' -> sb.append('\u000c'); 'n' -> sb.append('\n')
                            'r' -> sb.append('\r'); 't' -> sb.append('\t')
                            'u' -> {
                                if (pos + 4 > text.length) fail("short \\u escape")
                                val hex = text.substring(pos, pos + 4)
                                sb.append(hex.toIntOrNull(16)?.toChar() ?: fail("bad \\u escape '$hex'"))
                                pos += 4
                            }
                            else -> fail("bad escape '\\$e'")
                        }
                    }
                    c < ' ' -> fail("control character in string")
                    else -> sb.append(c)
                }
            }
        }

        private fun readNumber(): Any {
            val start = pos
            if (text[pos] == '-') pos++
            if (atEnd() || text[pos] !in '0'..'9') fail("expected a digit")
            if (text[pos] == '0') pos++ else while (pos < text.length && text[pos] in '0'..'9') pos++
            var integral = true
            if (pos < text.length && text[pos] == '.') {
                integral = false
                pos++
                if (atEnd() || text[pos] !in '0'..'9') fail("expected a digit after '.'")
                while (pos < text.length && text[pos] in '0'..'9') pos++
            }
            if (pos < text.length && (text[pos] == 'e' || text[pos] == 'E')) {
                integral = false
                pos++
                if (pos < text.length && (text[pos] == '+' || text[pos] == '-')) pos++
                if (atEnd() || text[pos] !in '0'..'9') fail("expected a digit in the exponent")
                while (pos < text.length && text[pos] in '0'..'9') pos++
            }
            val literal = text.substring(start, pos)
            if (integral) literal.toLongOrNull()?.let { return it }
            return literal.toDouble()
        }
    }
}

/* Typed accessors for parsed JSON; each names the key and the source when the type is wrong. */

internal fun Map<String, Any?>.obj(key: String, where: String): Map<String, Any?> {
    @Suppress("UNCHECKED_CAST")
    return this[key] as? Map<String, Any?> ?: throw ManifestException("$where: '$key' must be an object")
}

internal fun Map<String, Any?>.list(key: String, where: String): List<Any?> =
    this[key] as? List<Any?> ?: throw ManifestException("$where: '$key' must be a list")

internal fun Map<String, Any?>.str(key: String, where: String): String =
    this[key] as? String ?: throw ManifestException("$where: '$key' must be a string")

internal fun Map<String, Any?>.long(key: String, where: String): Long =
    this[key] as? Long ?: throw ManifestException("$where: '$key' must be an integer")

internal fun Map<String, Any?>.number(key: String, where: String): Double = when (val v = this[key]) {
    is Long -> v.toDouble()
    is Double -> v
    else -> throw ManifestException("$where: '$key' must be a number")
}
