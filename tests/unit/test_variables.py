from lanegate.spintax import spin, validate, variants
from lanegate.variables import (
    fill,
    fill_email_parts,
    templates_of,
    text_of,
    unfilled,
    variables_in,
)

ANA = {"name": "Ana", "fields": {"plan": "pro", "city": "Rosario"}}
PHONE = "5491155550001"


def test_name_phone_and_fields_are_filled_from_the_contact() -> None:
    text = "Hola {{name}} ({{phone}}), tu plan {{ fields.plan }} en {{fields.city}}"
    assert f"Hola Ana ({PHONE}), tu plan pro en Rosario" == fill(text, PHONE, ANA)


def test_a_fallback_stands_in_for_a_missing_value_only() -> None:
    text = "{{name|Cliente}}, {{fields.plan|básico}}, {{fields.city|?}}"
    assert "Ana, pro, Rosario" == fill(text, PHONE, ANA)
    assert "Cliente, básico, ?" == fill(text, PHONE, {"name": "", "fields": {}})
    assert "Cliente, básico, ?" == fill(text, PHONE, None)


def test_variables_are_filled_before_spintax_and_a_value_is_taken_literally() -> None:
    text = "{Hola|Oi} {{name|Cliente}}!"
    assert {"Hola Ana!", "Oi Ana!"} == variants(fill(text, PHONE, ANA))
    assert {"Hola Cliente!", "Oi Cliente!"} == variants(fill(text, PHONE, None))
    odd = {"name": "A|b {c} \\d"}
    filled = fill("{{name}}", PHONE, odd)
    validate(filled)
    assert "A|b {c} \\d" == spin(filled)


def test_ordinary_nested_spintax_and_escaped_braces_are_left_alone() -> None:
    assert "Sr\\|a" == fill("{{name|Sr\\|a}}", PHONE, None)
    assert "{{a|b}|c}" == fill("{{a|b}|c}", PHONE, ANA)
    assert "\\{{name}}" == fill("\\{{name}}", PHONE, ANA)


def test_unfilled_lists_the_variables_without_value_or_fallback() -> None:
    text = "{{name}} {{phone}} {{fields.plan}} {{fields.vip}} {{fields.vip|no}}"
    assert ["{{fields.vip}}"] == unfilled(text, PHONE, ANA)
    assert ["{{name}}", "{{fields.plan}}", "{{fields.vip}}"] == unfilled(text, PHONE, None)
    assert [] == unfilled("no variables", PHONE, None)
    assert ["name", "phone"] == [v.key for v in variables_in("{{name}}{{phone}}")]


def test_the_filled_part_is_the_text_body_or_caption() -> None:
    assert "t" == text_of({"text": "t"})
    assert "b" == text_of({"body": "b", "buttons": []})
    assert "c" == text_of({"caption": "c", "imageUrl": "http://x"})
    assert text_of({"latitude": 1.0}) is None


def test_an_emails_subject_and_html_are_filled_and_html_gets_values_escaped() -> None:
    content = {
        "text": "{{name}}",
        "subject": "Hi {{name}} <{{phone}}>",
        "html": "<p>{{name}} {{fields.city|<i>?</i>}}</p>",
    }
    odd = {"name": 'A<b>&"{x|y}\r\nBcc: x@y'}
    filled = fill_email_parts(content, "ana@example.com", odd)
    assert "{{name}}" == filled["text"]  # the text is filled and spun on its own
    assert 'Hi A<b>&"{x|y} Bcc: x@y <ana@example.com>' == spin(filled["subject"])
    assert "<p>A&lt;b&gt;&amp;&quot;{x|y}\r\nBcc: x@y <i>?</i></p>" == spin(filled["html"])


def test_the_templates_are_the_text_body_or_caption_and_an_emails_subject_and_html() -> None:
    assert {"text": "t", "subject": "s", "html": "h"} == templates_of(
        {"text": "t", "subject": "s", "html": "h", "imageUrl": "x"}
    )
    assert {"caption": "c"} == templates_of({"caption": "c", "subject": None})
    assert {} == templates_of({"latitude": 1.0})
