/*
 * The scan timeline of the current session: the per-window predictions smoothed into view
 * segments (the core's buildTimeline, the same rules and defaults as `echoweave classify`:
 * uncertain and view-changing windows are background), with the workflow statistics on top (time
 * and share per view, transitions, the order of views and background time: scanWorkflow).
 */
package org.echoweave.demo

import android.os.Bundle
import android.widget.ArrayAdapter
import android.widget.ListView
import android.widget.TextView
import androidx.appcompat.app.AppCompatActivity
import org.echoweave.core.BACKGROUND
import org.echoweave.core.buildTimeline

class TimelineActivity : AppCompatActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_timeline)
        val timeline = buildTimeline(ScanLog.predictions(), ScanLog.classNames, smooth = 5, minSegmentS = 1.0,
            uncertainAs = BACKGROUND, viewChangeS = 1.0, viewChangeThreshold = 0.15)
        val stats = timeline.workflow
        findViewById<TextView>(R.id.summary).text = buildString {
            append("%.1f s, %d segments, %d transitions, %d views\n".format(stats.totalS, stats.segments, stats.transitions, stats.viewsSeen))
            append("order %s, background %.1f s\n".format(stats.order.joinToString(" > ").ifEmpty { "-" }, stats.backgroundS))
            for ((view, v) in stats.perView) append("%-16s %6.1f s  %5.1f %%  x%d\n".format(view, v.timeS, 100 * v.share, v.visits))
        }
        val rows = timeline.segments.map { s ->
            "%7.2f–%7.2f s  %-16s  %3d windows  conf %.2f".format(s.startS, s.endS, s.view, s.windows, s.meanConfidence) +
                (s.meanUncertainty?.let { "  unc %.2f".format(it) } ?: "")
        }
        findViewById<ListView>(R.id.segments).adapter = ArrayAdapter(this, android.R.layout.simple_list_item_1, rows)
    }
}
