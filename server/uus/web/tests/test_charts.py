from django.template.loader import render_to_string

from uus.web.charts import BAR_W, LABEL_W, bar_chart


def test_bars_scale_to_the_largest_value():
    chart = bar_chart([("high", 10, "#d00"), ("low", 5, "#0a0"), ("none", 0, "#999")])
    assert [b.width for b in chart.bars] == [BAR_W, BAR_W // 2, 0]
    assert [b.y for b in chart.bars] == [0, 26, 52] and chart.height == 78
    assert chart.label_w == LABEL_W  # short labels keep the default column


def test_long_labels_widen_the_label_column_and_are_drawn_whole():
    chart = bar_chart([("fix available, not approved", 11, "#d33"), ("fixed", 1, "#3a3")])
    assert chart.label_w > LABEL_W and chart.bar_x == chart.label_w
    svg = render_to_string("web/_bar_chart.html", {"chart": chart, "label": "status"})
    assert f'viewBox="0 0 {chart.width} {chart.height}"' in svg and chart.width == chart.label_w + BAR_W + 60
    assert "fix available, not approved</text>" in svg and f'x="{chart.label_w}"' in svg


def test_an_empty_chart_has_one_row_of_height():
    assert bar_chart([]).height == 26 and bar_chart([]).bars == []
