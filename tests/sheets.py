"""Real spreadsheets made by the tests: an XLSX with a title row and merged headers (openpyxl), an XLS (xlwt)."""

from __future__ import annotations

import io

QUARTERS = [("2023年一季度", 980, 120), ("2023年二季度", 1234, 156), ("2023年三季度", 1310, 170),
            ("2023年四季度", 1502, 188)]


def revenue_xlsx() -> bytes:
    """Sheet 季度营收: a title row merged across, 季度 merged down two header rows, 营收（万元）
    merged across its sub-headers 产品 and 服务, then a row per quarter (rows 4-7); a hidden sheet;
    a second sheet 人员 with a plain header."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "季度营收"
    ws["A1"] = "2023年营收表"
    ws.merge_cells("A1:C1")
    ws["A2"] = "季度"
    ws.merge_cells("A2:A3")
    ws["B2"] = "营收（万元）"
    ws.merge_cells("B2:C2")
    ws["B3"], ws["C3"] = "产品", "服务"
    for row in QUARTERS:
        ws.append(list(row))
    hidden = wb.create_sheet("草稿")
    hidden["A1"] = "不该出现的草稿"
    hidden.sheet_state = "hidden"
    people = wb.create_sheet("人员")
    people.append(["部门", "人数"])
    people.append(["销售部", 35])
    people.append(["研发部", 80])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def staff_xls() -> bytes:
    """An XLS (BIFF8): 年份 merged down over two quarters, a header row."""
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("产量")
    for c, h in enumerate(["年份", "季度", "产量（吨）"]):
        ws.write(0, c, h)
    ws.write_merge(1, 2, 0, 0, "2022年")
    for r, (q, n) in enumerate([("一季度", 52.5), ("二季度", 61)], 1):
        ws.write(r, 1, q)
        ws.write(r, 2, n)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
