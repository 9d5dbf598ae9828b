#!/usr/bin/env python3
"""scripts/make_samples.py — generate the sample contract archive for the demo.

    python3 scripts/make_samples.py OUT_DIR      # writes OUT_DIR/contracts.zip

Standard library only (it runs before the project's virtual environment
exists). The output is deterministic: fixed timestamps, fixed member order,
so the same script always writes byte-identical files. contracts.zip holds:

    msa/master_services_agreement.pdf   a multi-page PDF written by hand here
                                        (objects, xref table, Helvetica text)
    dpa/data_processing_addendum.docx   WordprocessingML with Title/Heading
                                        styles, paragraphs and a table
    policies/information_security.md    a plain Markdown policy
    annexes/schedules.tar.gz            a nested archive (display paths like
                                        contracts.zip!/annexes/schedules.tar.gz!/...)

All contract text is invented for this project: the companies (Nimbus Ledger
GmbH, Harbor Lane Outfitters Ltd.) and every clause are fictional.
"""
import io
import os
import sys
import tarfile
import textwrap
import zipfile

FIXED_DATE = (2024, 3, 1, 9, 0, 0)
FIXED_MTIME = 1709283600  # 2024-03-01 09:00:00 UTC

PROVIDER = "Nimbus Ledger GmbH"
CUSTOMER = "Harbor Lane Outfitters Ltd."

# ------------------------------------------------------------------ texts
# Each clause: (heading, [paragraphs]). A None clause forces a page break in
# the PDF so that the sample always spans several pages.
MSA = [
    ("MASTER SERVICES AGREEMENT", [
        f"This Master Services Agreement (the \"Agreement\") is entered into on 1 March 2024 "
        f"between {PROVIDER}, Kaiserstrasse 12, 60311 Frankfurt am Main, Germany (the "
        f"\"Provider\") and {CUSTOMER}, 4 Quayside Row, Bristol BS1 4QA, United Kingdom (the "
        f"\"Customer\").",
    ]),
    ("1. Definitions", [
        "1.1 \"Services\" means the hosted ledger reconciliation platform, the related support "
        "and the professional services described in an Order Form.",
        "1.2 \"Order Form\" means a document signed by both parties that references this "
        "Agreement and states the Services, the fees and the subscription term.",
        "1.3 \"Customer Data\" means all data submitted to the Services by or for the Customer.",
    ]),
    ("2. Provision of the Services", [
        "2.1 The Provider shall make the Services available to the Customer during the "
        "subscription term in accordance with this Agreement and the applicable Order Form.",
        "2.2 The Provider shall use commercially reasonable efforts to make the Services "
        "available 99.5 percent of each calendar month, excluding scheduled maintenance "
        "announced at least five (5) business days in advance.",
        "2.3 The Customer shall not resell, sublicense or reverse engineer the Services.",
    ]),
    None,
    ("3. Fees and Payment", [
        "3.1 The Customer shall pay the fees stated in each Order Form. Fees are quoted in euro "
        "and exclude value added tax.",
        "3.2 Invoices are issued annually in advance and are due within thirty (30) days of the "
        "invoice date.",
        "3.3 Overdue amounts bear interest at one percent (1%) per month. The Provider may "
        "suspend the Services if any undisputed amount is more than forty-five (45) days "
        "overdue, after giving ten (10) days written notice.",
    ]),
    ("4. Term and Termination", [
        "4.1 This Agreement starts on the date above and continues until all Order Forms have "
        "expired or been terminated.",
        "4.2 Either party may terminate this Agreement for material breach if the breach is not "
        "cured within thirty (30) days after written notice describing it.",
        "4.3 On termination the Provider shall make the Customer Data available for export for "
        "sixty (60) days and shall then delete it, unless law requires its retention.",
    ]),
    ("5. Confidentiality", [
        "5.1 Each party shall protect the other party's Confidential Information with at least "
        "the care it uses for its own, and no less than reasonable care.",
        "5.2 These obligations survive for five (5) years after termination.",
    ]),
    None,
    ("6. Warranties", [
        "6.1 The Provider warrants that the Services will perform materially as described in "
        "the documentation. The Customer's exclusive remedy for a breach of this warranty is "
        "the correction of the non-conformity or, failing that, a refund of prepaid fees for "
        "the affected period.",
    ]),
    ("7. Limitation of Liability", [
        "7.1 Neither party's aggregate liability under this Agreement shall exceed the fees "
        "paid or payable in the twelve (12) months before the event giving rise to the claim.",
        "7.2 The limitation in clause 7.1 does not apply to a breach of clause 5 "
        "(Confidentiality), to the Customer's payment obligations, or to liability that cannot "
        "be limited by law.",
    ]),
    ("8. Governing Law", [
        "8.1 This Agreement is governed by the laws of Ireland. The courts of Dublin have "
        "exclusive jurisdiction over any dispute arising from it.",
        f"Signed for {PROVIDER}: Lena Vogt, Managing Director.",
        f"Signed for {CUSTOMER}: Owen Pryce, Chief Financial Officer.",
    ]),
]

DPA_TITLE = "Data Processing Addendum"
DPA = [
    ("Intro", [
        f"This Data Processing Addendum (the \"Addendum\") forms part of the Master Services "
        f"Agreement between {PROVIDER} (the \"Processor\") and {CUSTOMER} (the \"Controller\").",
    ]),
    ("1. Subject Matter and Duration", [
        "1.1 The Processor processes personal data on behalf of the Controller only to provide "
        "the Services, for the term of the Agreement.",
        "1.2 Categories of data subjects: the Controller's employees, suppliers and customers. "
        "Categories of data: names, business contact details, invoice and payment records.",
    ]),
    ("2. Obligations of the Processor", [
        "2.1 The Processor shall process personal data only on documented instructions from the "
        "Controller, including with regard to transfers to a third country.",
        "2.2 The Processor shall ensure that persons authorised to process the personal data "
        "have committed themselves to confidentiality.",
    ]),
    ("3. Sub-processors", [
        "3.1 The Controller authorises the sub-processors listed in the table below. The "
        "Processor shall give at least thirty (30) days notice of any intended change, during "
        "which the Controller may object on reasonable grounds.",
        "TABLE",
    ]),
    ("4. Security and Breach Notification", [
        "4.1 The Processor shall implement the technical and organisational measures described "
        "in the Information Security Policy, including encryption of personal data at rest and "
        "in transit.",
        "4.2 The Processor shall notify the Controller without undue delay, and in any event "
        "within forty-eight (48) hours, after becoming aware of a personal data breach.",
    ]),
    ("5. Audits, Return and Deletion", [
        "5.1 The Controller may audit the Processor's compliance once per calendar year on "
        "thirty (30) days notice, at the Controller's cost.",
        "5.2 At the end of the Services the Processor shall, at the Controller's choice, return "
        "or delete all personal data within sixty (60) days.",
    ]),
]
SUBPROCESSORS = [
    ("Sub-processor", "Service", "Location"),
    ("Coldharbour Hosting B.V.", "Infrastructure hosting", "Netherlands"),
    ("Parcelpost Mail Ltd.", "Transactional e-mail", "Ireland"),
    ("Quillbase Support Oy", "Support ticketing", "Finland"),
]

POLICY = f"""# Information Security Policy

Owner: Chief Information Security Officer, {PROVIDER}
Version: 2.3, approved 12 February 2024

## 1. Purpose

This policy sets the minimum security controls for every system that stores or
processes Customer Data.

## 2. Access Control

- Access is granted on the principle of least privilege and reviewed every quarter.
- Production access requires hardware-backed multi-factor authentication.
- Shared accounts are prohibited; service accounts have a named owner.

## 3. Encryption

- Customer Data is encrypted at rest with AES-256 and in transit with TLS 1.2 or later.
- Encryption keys are rotated at least every twelve months.

## 4. Incident Response

Security incidents are triaged within four hours. Personal data breaches are
reported to the affected controller within 48 hours, as the Data Processing
Addendum requires.

## 5. Backups

Encrypted backups are taken daily, kept for 35 days, and restored in a test
every quarter.
"""

SCHEDULE_A = """SCHEDULE A - PRICING

Plan            Seats   Annual fee (EUR)
Reconcile Pro     25        18,000
Extra seat         1           640
Premium support    -         3,500

Prices are fixed for the initial term of thirty-six (36) months.
"""

SCHEDULE_B = """SCHEDULE B - SERVICE CREDITS

Monthly availability    Credit (% of monthly fee)
99.0% - 99.5%           5%
95.0% - 99.0%           10%
below 95.0%             25%

Service credits are the Customer's sole remedy for unavailability.
"""


# ------------------------------------------------------------------ PDF
def _pdf_escape(s):
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(clauses, width=88, lines_per_page=46):
    """A minimal PDF 1.4: one content stream per page, Helvetica (a standard
    font: no embedding), text lines placed with TL/T*."""
    pages, cur = [], []

    def flush():
        if cur:
            pages.append(list(cur))
            cur.clear()

    for clause in clauses:
        if clause is None:
            flush()
            continue
        heading, paras = clause
        block = [heading, ""]
        for p in paras:
            block += textwrap.wrap(p, width) + [""]
        if len(cur) + len(block) > lines_per_page:
            flush()
        cur.extend(block)
    flush()

    objs = {}
    n_pages = len(pages)
    font_id = 3
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n_pages))
    objs[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objs[2] = f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode()
    objs[font_id] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 10 Tf", "14 TL", "60 760 Td"]
        for ln in lines:
            ops.append(f"({_pdf_escape(ln)}) Tj T*")
        ops += ["ET", "BT", "/F1 8 Tf", f"290 30 Td (Page {i + 1} of {n_pages}) Tj", "ET"]
        stream = ("\n".join(ops) + "\n").encode("latin-1")
        objs[4 + 2 * i] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                           f"/Resources << /Font << /F1 {font_id} 0 R >> >> "
                           f"/Contents {5 + 2 * i} 0 R >>").encode()
        objs[5 + 2 * i] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream"

    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for num in sorted(objs):
        offsets[num] = out.tell()
        out.write(b"%d 0 obj\n" % num + objs[num] + b"\nendobj\n")
    xref = out.tell()
    size = max(objs) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
    for num in range(1, size):
        out.write(b"%010d 00000 n \n" % offsets[num])
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref))
    return out.getvalue()


# ------------------------------------------------------------------ DOCX
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _w_par(text, style=None):
    ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f'<w:p>{ppr}<w:r><w:t xml:space="preserve">{_xml_escape(text)}</w:t></w:r></w:p>'


def _w_table(rows):
    out = ['<w:tbl><w:tblPr><w:tblStyle w:val="TableGrid"/><w:tblW w:w="0" w:type="auto"/></w:tblPr>']
    for row in rows:
        out.append("<w:tr>")
        for cell in row:
            out.append(f"<w:tc>{_w_par(cell)}</w:tc>")
        out.append("</w:tr>")
    out.append("</w:tbl>")
    return "".join(out)


def make_docx():
    body = [_w_par(DPA_TITLE, "Title")]
    for heading, paras in DPA:
        if heading != "Intro":
            body.append(_w_par(heading, "Heading1"))
        for p in paras:
            body.append(_w_table(SUBPROCESSORS) if p == "TABLE" else _w_par(p))
    document = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<w:document xmlns:w="{W_NS}"><w:body>{"".join(body)}'
                f'<w:sectPr><w:pgSz w:w="11906" w:h="16838"/></w:sectPr></w:body></w:document>')
    styles = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:styles xmlns:w="{W_NS}">'
              '<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/></w:style>'
              '<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/><w:basedOn w:val="Normal"/>'
              '<w:rPr><w:b/><w:sz w:val="40"/></w:rPr></w:style>'
              '<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/>'
              '<w:basedOn w:val="Normal"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr>'
              '<w:rPr><w:b/><w:sz w:val="28"/></w:rPr></w:style>'
              '<w:style w:type="table" w:styleId="TableGrid"><w:name w:val="Table Grid"/></w:style>'
              '</w:styles>')
    content_types = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                     '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                     '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                     '<Default Extension="xml" ContentType="application/xml"/>'
                     '<Override PartName="/word/document.xml" ContentType="application/'
                     'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
                     '<Override PartName="/word/styles.xml" ContentType="application/'
                     'vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>'
                     '</Types>')
    rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="word/document.xml"/></Relationships>')
    doc_rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                'relationships/styles" Target="styles.xml"/></Relationships>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in (("[Content_Types].xml", content_types), ("_rels/.rels", rels),
                           ("word/document.xml", document), ("word/styles.xml", styles),
                           ("word/_rels/document.xml.rels", doc_rels)):
            z.writestr(zipfile.ZipInfo(name, FIXED_DATE), data.encode("utf-8"),
                       compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


# ------------------------------------------------------------------ nested tar.gz
def make_schedules_tgz():
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, text in (("schedules/schedule_a_pricing.txt", SCHEDULE_A),
                           ("schedules/schedule_b_service_credits.txt", SCHEDULE_B)):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), FIXED_MTIME, 0o644
            info.uname = info.gname = "tome"
            t.addfile(info, io.BytesIO(data))
    import gzip
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=FIXED_MTIME) as g:
        g.write(raw.getvalue())
    return out.getvalue()


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: make_samples.py OUT_DIR\n")
        return 2
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    members = [
        ("msa/master_services_agreement.pdf", make_pdf(MSA)),
        ("dpa/data_processing_addendum.docx", make_docx()),
        ("policies/information_security.md", POLICY.encode("utf-8")),
        ("annexes/schedules.tar.gz", make_schedules_tgz()),
    ]
    path = os.path.join(out_dir, "contracts.zip")
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, FIXED_DATE)
            info.external_attr = 0o100644 << 16
            z.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    os.replace(tmp, path)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
