"""The Jinja2 templates of report.html, as strings (``rag.evaluation.report`` renders them).

Strings in a module rather than files beside it: they ship inside the package with no
package-data setting, and load with a ``DictLoader`` whatever way the package is installed.
Autoescape is on for every template, so no value needs escaping by hand. The three SVG charts are
the only values marked ``|safe``: ``rag.evaluation.report`` builds them, escaping every text in
them. The ``fmt`` filter writes a number, None or a bool the way the report shows it.
"""

from __future__ import annotations

CSS = """
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","Microsoft YaHei",sans-serif;
margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;
vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#555}.fail{border:1px solid #e6b0b0;border-left:5px solid #d9534f;padding:.3em 1em;margin:1em 0}
.reasons{color:#a33;font-weight:600}.ok{color:#2a7a2a}.bad{color:#b22}.muted{color:#888}
.excerpt{max-width:640px;white-space:pre-wrap}svg text{font-size:11px;fill:#333}
"""

# One failed question: why, what was answered, what was expected, and what was retrieved.
FAILURE = """\
<article class=fail id="q-{{ f.id }}"><h3>{{ f.id }} · {{ f.topic|fmt }}</h3>
<p><b>{{ f.question }}</b></p>
<ul class=reasons>{% for reason in f.reasons %}<li>{{ reason }}</li>{% endfor %}</ul>
<dl><dt>Answer{{ " (abstained)" if f.abstained else "" }}</dt><dd>{{ f.answer }}</dd>
<dt>Reference</dt><dd>{{ f.reference }}</dd>
{% if f.facts %}
<dt>Key facts</dt><dd><ul>
{% for fact, ok in f.facts %}
<li class="{{ "ok" if ok else "bad" }}">{{ "✓" if ok else "✗" }} {{ fact }}</li>
{% endfor %}
</ul></dd>
{% endif %}
{% if f.judge %}
<dt>Judge</dt><dd>{{ f.judge }}</dd>
{% endif %}
{% if f.warnings %}
<dt>Warnings</dt><dd>{{ f.warnings|join("; ") }}</dd>
{% endif %}
{% if f.generator %}
<dt>Generator</dt><dd>{{ f.generator }}</dd>
{% endif %}
<dt>Latency</dt><dd>{{ f.latency_ms|fmt }} ms</dd></dl>
{% if f.passages %}
<table><tr><th>#</th><th>document</th><th>score</th><th>relevant</th><th>cited</th><th>text</th></tr>
{% for p in f.passages %}
<tr><td class=num>{{ p.n }}</td><td>{{ p.doc_id }}<br><span class=muted>{{ p.chunk_id }}</span></td>\
<td class=num>{{ p.score|fmt }}</td>\
<td class="{{ "ok" if p.relevant else "bad" }}">{{ "relevant" if p.relevant else "not relevant" }}</td>\
<td>{{ "[%d]"|format(p.n) if p.cited else "" }}</td><td class=excerpt>{{ p.excerpt }}</td></tr>
{% endfor %}
</table>
{% else %}
<p class=muted>no passage retrieved</p>
{% endif %}
</article>
"""

# The whole report.html of one run.
PAGE = """\
<!doctype html>
<html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rag eval report</title><style>{% include "report.css" %}</style></head><body>
<h1>rag eval report</h1><p class=meta>{{ meta }}</p>
<p>{{ n|fmt }} questions, {{ passed }} passed, {{ failed|length }} failed\
{{ ", %d rows skipped"|format(skipped|length) if skipped else "" }}.</p>
<section id=summary><h2>Summary</h2>
<table><tr><th>metric</th><th>value</th><th>over n</th><th>meaning</th></tr>
{% for m in metrics %}
<tr><td>{{ m.label }}</td><td class=num>{{ m.value|fmt }}</td>\
<td class=num>{{ m.over|fmt if m.has_over else "" }}</td><td>{{ m.meaning }}</td></tr>
{% endfor %}
</table></section>
{% if judge %}
<section id=judge><h2>LLM judge (kept apart from the metrics above)</h2><table>
{% for key, value in judge.items() %}
<tr><th>{{ key }}</th><td>{{ value|fmt }}</td></tr>
{% endfor %}
</table></section>
{% endif %}
<section id=by-topic><h2>By topic</h2>
{{ topic_chart|safe }}
<p class=muted>A grey stub: no question of that topic counts for that rate.</p>
{% if topics %}
<table><tr><th>topic</th><th>n</th>{% for label in topic_labels %}<th>{{ label }}</th>{% endfor %}</tr>
{% for t in topics %}
<tr><td>{{ t.topic }}</td><td class=num>{{ t.n|fmt }}</td>\
{% for value in t["values"] %}<td class=num>{{ value|fmt }}</td>{% endfor %}</tr>
{% endfor %}
</table>
{% endif %}
</section>
<section id=confidence><h2>Answered share vs accuracy</h2>
{% if curve.points %}
<p>Keeping only the answers whose {{ curve.field }} is at least the threshold (the rest abstain):
the share of all questions answered, and how many of those answers are right.</p>
{{ curve_chart|safe }}
<table><tr><th>{{ curve.field }} ≥</th><th>answered</th><th>accuracy</th><th>answers</th></tr>
{% for p in curve.points %}
<tr><td class=num>{{ p.threshold|fmt }}</td><td class=num>{{ p.answered|fmt }}</td>\
<td class=num>{{ p.accuracy|fmt }}</td><td class=num>{{ p.n }}</td></tr>
{% endfor %}
</table>
{% else %}
<p class=muted>The answers carry no confidence (neither confidence nor support).</p>
{% endif %}
</section>
<section id=latency><h2>Latency</h2>
{{ latency_chart|safe }}
</section>
<section id=failed><h2>Failed questions ({{ failed|length }})</h2>
{% for f in failed %}
{% include "failure.html" %}
{% else %}
<p class=ok>No question failed.</p>
{% endfor %}
</section>
<section id=all><h2>All questions</h2>
<table><tr><th>id</th><th>topic</th><th>question</th><th>result</th><th>first relevant</th><th>ms</th><th>judge</th></tr>
{% for r in results %}
<tr><td>{% if r.passed %}{{ r.id }}{% else %}<a href="#q-{{ r.id }}">{{ r.id }}</a>{% endif %}</td>\
<td>{{ r.topic|fmt }}</td><td>{{ r.question }}</td>\
<td class="{{ "ok" if r.passed else "bad" }}">{{ "pass" if r.passed else "FAIL" }}</td>\
<td class=num>{{ r.first_relevant|fmt }}</td><td class=num>{{ r.latency_ms|fmt }}</td><td>{{ r.judge }}</td></tr>
{% endfor %}
</table></section>
{% if skipped %}
<section id=skipped><h2>Skipped rows</h2><ul>
{% for line in skipped %}
<li>{{ line }}</li>
{% endfor %}
</ul></section>
{% endif %}
</body></html>
"""

# the stylesheet is template text too, so it goes into the page as it is (only values are escaped)
TEMPLATES = {"report.html": PAGE, "failure.html": FAILURE, "report.css": CSS}
