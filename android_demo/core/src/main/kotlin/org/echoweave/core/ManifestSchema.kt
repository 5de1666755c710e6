/*
 * The manifest's JSON Schema check, as edge/manifest.py runs it with jsonschema.
 *
 * The schema itself is the Python edge's file: core/src/main/resources/org/echoweave/core/
 * manifest.schema.json is a byte-for-byte copy of edge/manifest.schema.json
 * (tests/test_android_golden.py fails when they differ). This file interprets the keywords that
 * schema uses (type, required, properties, additionalProperties, propertyNames, minProperties,
 * items, minItems, uniqueItems, enum, minimum, maximum, exclusiveMinimum, minLength, pattern,
 * $ref into $defs) with jsonschema's messages and Python's repr() of values, and picks the same
 * first error as validate_manifest: the lowest list index, then key name, shortest path first.
 */
package org.echoweave.core

import java.math.BigDecimal

/** One schema violation: [path] is the list of keys (String) and indices (Int) down to the value. */
data class SchemaError(val path: List<Any>, val message: String) {
    /** `artifacts[0].methods` style location (empty at the top level), as _where_in in Python. */
    val field: String
        get() = buildString {
            for (part in path) {
                if (part is Int) append("[$part]") else { if (isNotEmpty()) append('.'); append(part) }
            }
        }
}

object ManifestSchema {
    /** The schema, read once from the resource copied from edge/manifest.schema.json. */
    @Suppress("UNCHECKED_CAST")
    val schema: Map<String, Any?> by lazy {
        val stream = ManifestSchema::class.java.getResourceAsStream("manifest.schema.json")
            ?: error("manifest.schema.json is missing from the core's resources")
        Json.parse(stream.bufferedReader().use { it.readText() }, "manifest.schema.json") as Map<String, Any?>
    }

    /** Every violation of [instance] in jsonschema's iteration order. */
    fun errors(instance: Any?): List<SchemaError> =
        mutableListOf<SchemaError>().also { validate(instance, schema, emptyList(), it) }

    /** The error validate_manifest reports: smallest path (index before key, keys by name), first of equals. */
    fun firstError(instance: Any?): SchemaError? = errors(instance).minWithOrNull { a, b -> comparePaths(a.path, b.path) }

    private fun comparePaths(a: List<Any>, b: List<Any>): Int {
        for (i in 0 until minOf(a.size, b.size)) {
            val x = a[i]
            val y = b[i]
            val c = when {
                x is Int && y is Int -> x.compareTo(y)
                x is Int -> -1
                y is Int -> 1
                else -> (x as String).compareTo(y as String)
            }
            if (c != 0) return c
        }
        return a.size.compareTo(b.size)
    }

    @Suppress("UNCHECKED_CAST")
    private fun validate(inst: Any?, schema: Map<String, Any?>, path: List<Any>, out: MutableList<SchemaError>) {
        fun fail(message: String) = out.add(SchemaError(path, message))
        for ((keyword, value) in schema) {
            when (keyword) {
                "type" -> {
                    val types = if (value is List<*>) value.map { it as String } else listOf(value as String)
                    if (types.none { isType(inst, it) }) fail("${pyRepr(inst)} is not of type ${types.joinToString(", ") { pyRepr(it) }}")
                }
                "required" -> if (inst is Map<*, *>) {
                    for (p in value as List<*>) if (p !in inst) fail("${pyRepr(p)} is a required property")
                }
                "properties" -> if (inst is Map<*, *>) {
                    for ((p, sub) in value as Map<String, Any?>) {
                        if (p in inst) validate(inst[p], sub as Map<String, Any?>, path + p, out)
                    }
                }
                "additionalProperties" -> if (inst is Map<*, *>) {
                    val known = (schema["properties"] as? Map<String, Any?>)?.keys ?: emptySet()
                    val extras = inst.keys.map { it as String }.filter { it !in known }
                    if (value is Map<*, *>) {
                        for (e in extras) validate(inst[e], value as Map<String, Any?>, path + e, out)
                    } else if (value == false && extras.isNotEmpty()) {
                        val verb = if (extras.size == 1) "was" else "were"
                        fail("Additional properties are not allowed (${extras.sorted().joinToString(", ") { pyRepr(it) }} $verb unexpected)")
                    }
                }
                "propertyNames" -> if (inst is Map<*, *>) {
                    for (p in inst.keys) validate(p, value as Map<String, Any?>, path, out)
                }
                "minProperties" -> if (inst is Map<*, *> && inst.size < (value as Long)) {
                    fail("${pyRepr(inst)} ${if (value == 1L) "should be non-empty" else "does not have enough properties"}")
                }
                "items" -> if (inst is List<*>) {
                    inst.forEachIndexed { i, x -> validate(x, value as Map<String, Any?>, path + i, out) }
                }
                "minItems" -> if (inst is List<*> && inst.size < (value as Long)) {
                    fail("${pyRepr(inst)} ${if (value == 1L) "should be non-empty" else "is too short"}")
                }
                "uniqueItems" -> if (value == true && inst is List<*> &&
                    inst.indices.any { i -> (0 until i).any { j -> jsonEqual(inst[i], inst[j]) } }) {
                    fail("${pyRepr(inst)} has non-unique elements")
                }
                "enum" -> if ((value as List<*>).none { jsonEqual(it, inst) }) fail("${pyRepr(inst)} is not one of ${pyRepr(value)}")
                "minimum" -> if (isNumber(inst) && toDouble(inst) < toDouble(value)) {
                    fail("${pyRepr(inst)} is less than the minimum of ${pyRepr(value)}")
                }
                "maximum" -> if (isNumber(inst) && toDouble(inst) > toDouble(value)) {
                    fail("${pyRepr(inst)} is greater than the maximum of ${pyRepr(value)}")
                }
                "exclusiveMinimum" -> if (isNumber(inst) && toDouble(inst) <= toDouble(value)) {
                    fail("${pyRepr(inst)} is less than or equal to the minimum of ${pyRepr(value)}")
                }
                "minLength" -> if (inst is String && inst.codePointCount(0, inst.length) < (value as Long)) {
                    fail("${pyRepr(inst)} ${if (value == 1L) "should be non-empty" else "is too short"}")
                }
                "pattern" -> if (inst is String && !Regex(value as String).containsMatchIn(inst)) {
                    fail("${pyRepr(inst)} does not match ${pyRepr(value)}")
                }
                "\$ref" -> {
                    val name = (value as String).removePrefix("#/\$defs/")
                    val defs = this.schema["\$defs"] as Map<String, Any?>
                    validate(inst, defs[name] as? Map<String, Any?> ?: error("unknown \$ref $value"), path, out)
                }
                // Annotations and keywords this schema does not use: nothing to check.
                else -> {}
            }
        }
    }

    // The manifest's integers are strict (4.0 is not a frame count), as the Python edge's type checker.
    private fun isType(v: Any?, type: String): Boolean = when (type) {
        "object" -> v is Map<*, *>
        "array" -> v is List<*>
        "string" -> v is String
        "integer" -> v is Long
        "number" -> isNumber(v)
        "boolean" -> v is Boolean
        "null" -> v == null
        else -> error("unknown JSON Schema type '$type'")
    }

    private fun isNumber(v: Any?) = v is Long || v is Double

    private fun toDouble(v: Any?): Double = (v as Number).toDouble()

    /** jsonschema's equality: 1 == 1.0, but true is not 1. */
    private fun jsonEqual(a: Any?, b: Any?): Boolean =
        if (isNumber(a) && isNumber(b)) toDouble(a) == toDouble(b) else a == b
}

/** Python's repr() of a parsed JSON value (what jsonschema's messages show). */
fun pyRepr(v: Any?): String = when (v) {
    null -> "None"
    true -> "True"
    false -> "False"
    is String -> pyStringRepr(v)
    is Long, is Int -> v.toString()
    is Double -> pyFloatRepr(v)
    is List<*> -> v.joinToString(", ", "[", "]") { pyRepr(it) }
    is Map<*, *> -> v.entries.joinToString(", ", "{", "}") { "${pyRepr(it.key)}: ${pyRepr(it.value)}" }
    else -> v.toString()
}

private fun pyStringRepr(s: String): String {
    val quote = if ('\'' in s && '"' !in s) '"' else '\''
    val out = StringBuilder().append(quote)
    for (c in s) {
        when {
            c == quote || c == '\\' -> out.append('\\').append(c)
            c == '\n' -> out.append("\\n")
            c == '\r' -> out.append("\\r")
            c == '\t' -> out.append("\\t")
            c.code < 0x20 || c.code == 0x7f -> out.append("\\x%02x".format(c.code))
            else -> out.append(c)
        }
    }
    return out.append(quote).toString()
}

/** repr(float): the shortest round-trip digits, positional for exponents -4..15, else 1.5e-05. */
private fun pyFloatRepr(d: Double): String {
    if (d.isNaN()) return "nan"
    if (d.isInfinite()) return if (d > 0) "inf" else "-inf"
    if (d == 0.0) return if (1.0 / d < 0) "-0.0" else "0.0"
    val bd = BigDecimal(d.toString()).stripTrailingZeros()
    val exponent = bd.precision() - bd.scale() - 1
    if (exponent in -4..15) {
        val plain = bd.toPlainString()
        return if ('.' in plain) plain else "$plain.0"
    }
    val digits = bd.unscaledValue().abs().toString()
    val mantissa = if (digits.length == 1) digits else digits[0] + "." + digits.substring(1)
    val sign = if (d < 0) "-" else ""
    val expSign = if (exponent < 0) "-" else "+"
    return "$sign${mantissa}e$expSign${"%02d".format(kotlin.math.abs(exponent))}"
}
