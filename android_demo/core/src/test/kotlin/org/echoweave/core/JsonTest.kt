package org.echoweave.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

class JsonTest {
    @Test
    fun parsesNestedValuesWithTypes() {
        val v = Json.parse("""{"a": [1, -2.5e1, true, false, null], "b": {"c": "x\"y\u00e9\n"}, "big": 12345678901}""").asMap()
        assertEquals(listOf(1L, -25.0, true, false, null), v["a"])
        assertEquals("x\"yé\n", v["b"].asMap()["c"])
        assertEquals(12345678901L, v["big"])
        assertEquals(listOf("a", "b", "big"), v.keys.toList())  // key order kept
    }

    @Test
    fun integersAndFloatsStayApart() {
        assertTrue(Json.parse("4") is Long)
        assertTrue(Json.parse("4.0") is Double)
        assertTrue(Json.parse("4e0") is Double)
        assertEquals(0.1 + 0.2, Json.parse("0.30000000000000004"))
    }

    @Test
    fun acceptsPythonNonFiniteFloats() {
        val v = Json.parse("[NaN, Infinity, -Infinity]").asList()
        assertTrue((v[0] as Double).isNaN())
        assertEquals(Double.POSITIVE_INFINITY, v[1])
        assertEquals(Double.NEGATIVE_INFINITY, v[2])
    }

    @Test
    fun rejectsMalformedTextWithOffset() {
        for (bad in listOf("", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"abc", "[1] x", "{'a': 1}", "tru")) {
            val e = assertThrows(JsonException::class.java) { Json.parse(bad, "m.json") }
            assertTrue(e.message!!, e.message!!.startsWith("m.json: invalid JSON at offset"))
        }
    }

    @Test
    fun writeRoundTrips() {
        val value = linkedMapOf("k" to listOf(1L, 2.5, "s\t\"", null, true), "e" to emptyMap<String, Any?>())
        assertEquals(value, Json.parse(Json.write(value)))
        assertNull(Json.parse("null"))
    }
}
