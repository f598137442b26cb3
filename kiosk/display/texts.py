"""Every word the screen shows, in Chinese and English.

Keys are the screen kinds (``idle``, ``pass`` ...), the stable reason codes of
``kiosk.decision.Reason``, the outcomes of a family lookup (``family_unknown`` ...) and the hints
(``hint_closer`` ... for ``ScreenState.hint``); ``BUTTONS``
holds the words on touch buttons. ``TITLES`` holds the one headline of each screen kind (the big verdict
word on PASS / REFUSE); ``LINES`` holds the smaller lines under it, and for a reason: what went
wrong and what to do next, in one line. Every entry has as many Chinese lines as English ones, so
"both" can put each Chinese line directly above its English one.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["zh", "en", "both"]

TITLES: dict[str, dict[str, str]] = {
    "idle": {"zh": "扫码 · 测温", "en": "Health check"},
    "measuring": {"zh": "正在测温", "en": "Measuring"},
    "hold_still": {"zh": "请保持不动", "en": "Please hold still"},
    "measuring_again": {"zh": "再次测温", "en": "Measuring again"},
    "prompt_code": {"zh": "请出示健康码", "en": "Please show your code"},
    "prompt_wrist": {"zh": "请测量体温", "en": "Measure your temperature"},
    "pass": {"zh": "通过", "en": "PASS"},
    "refuse": {"zh": "禁止通行", "en": "REFUSE"},
    "out_of_service": {"zh": "暂停服务", "en": "OUT OF SERVICE"},
    # People without phones: a family member's phone number looks up their proxy codes.
    "family_keypad": {"zh": "输入家人手机号", "en": "Family member's phone"},
    "family_searching": {"zh": "正在查询", "en": "Looking up"},
    "family_choose": {"zh": "请点击您的名字", "en": "Tap your name"},
    "family_message": {"zh": "无法查询", "en": "Lookup failed"},
    # Headlines of the family lookup's messages (its kind "family_message" with this reason).
    "family_unknown": {"zh": "未能查到", "en": "No code found"},
    "family_unavailable": {"zh": "无法查询", "en": "Lookup failed"},
    "family_rate_limited": {"zh": "暂停查询", "en": "Lookups paused"},
}

LINES: dict[str, dict[str, tuple[str, ...]]] = {
    # Screen kinds.
    "idle": {
        "zh": ("向摄像头出示健康码", "将手腕靠近测温区"),
        "en": ("Show your health code to the camera", "Hold your wrist to the sensor"),
    },
    "measuring": {"zh": ("请保持不动",), "en": ("Hold still",)},
    "hold_still": {
        "zh": ("请对准测温区，不要移动",),
        "en": ("Stay steady in front of the sensor",),
    },
    "measuring_again": {
        "zh": ("体温偏高，正在复测", "请保持在测温区"),
        "en": ("Raised reading: measuring a second time", "Stay in front of the sensor"),
    },
    # Shown above "measuring" once the code has been read, so the visitor knows it worked.
    "code_read": {"zh": ("✓ 健康码已读取",), "en": ("✓ Code read",)},
    "prompt_code": {
        "zh": ("体温已测量", "请向摄像头出示健康码"),
        "en": ("Temperature taken", "Show your health code to the camera"),
    },
    "prompt_wrist": {
        "zh": ("健康码已读取", "请将手腕靠近测温区"),
        "en": ("Code read", "Hold your wrist to the sensor"),
    },
    "pass": {"zh": ("请通行",), "en": ("Please go ahead",)},
    # Shown only if a refusal arrives without a reason; every real refusal names its reasons.
    "refuse": {"zh": ("请联系工作人员",), "en": ("Please see staff",)},
    "out_of_service": {"zh": ("请联系工作人员",), "en": ("Please see staff",)},
    "family_keypad": {
        "zh": ("查找家人代办的健康码",),
        "en": ("to find your family code",),
    },
    "family_searching": {"zh": ("请稍候",), "en": ("Please wait",)},
    "family_choose": {
        "zh": ("然后核验健康码，测量体温",),
        "en": ("Next: code check and temperature",),
    },
    # Shown only if a family lookup message arrives without its key.
    "family_message": {"zh": ("请联系工作人员",), "en": ("Please see staff",)},
    # What a family lookup came to, when it found nothing to choose from.
    "family_unknown": {
        "zh": ("此号码没有关联的家人健康码", "请核对号码，或联系工作人员"),
        "en": ("No family codes for this number", "Check the number, or see staff"),
    },
    "family_unavailable": {
        "zh": ("暂时无法查询，请联系工作人员",),
        "en": ("Lookup not available now: please see staff",),
    },
    "family_rate_limited": {
        "zh": ("查询次数过多，请联系工作人员",),
        "en": ("Too many lookups: please see staff",),
    },
    # Hints (ScreenState.hint): what would help, from the camera or the thermometer.
    "hint_closer": {"zh": ("请把手机靠近一些",), "en": ("Move the phone closer",)},
    "hint_hold_still": {"zh": ("请拿稳手机",), "en": ("Hold the phone still",)},
    "hint_brighter": {"zh": ("请调高手机屏幕亮度",), "en": ("Turn up your phone's brightness",)},
    "hint_wrist_closer": {"zh": ("请把手腕再靠近测温区一些",), "en": ("Bring your wrist closer to the sensor",)},
    # Reasons (kiosk.decision.Reason values): what happened, and what to do next.
    "sensor_fault": {
        "zh": ("测温失败，请重试或联系工作人员",),
        "en": ("Measurement failed: please try again or see staff",),
    },
    "fever": {
        "zh": ("体温异常，请联系工作人员",),
        "en": ("High temperature: please see staff",),
    },
    "remeasure": {
        "zh": ("体温偏低，请稍等几分钟后重新测量",),
        "en": ("Temperature too low: please wait a few minutes and measure again",),
    },
    "cannot_verify": {
        "zh": ("无法核验健康码，请联系工作人员",),
        "en": ("Cannot verify your code: please see staff",),
    },
    "unknown_code": {
        "zh": ("无法识别此码，请联系工作人员",),
        "en": ("Code not recognised: please see staff",),
    },
    "red_code": {
        "zh": ("红码，请联系工作人员",),
        "en": ("Red code: please see staff",),
    },
    "yellow_code": {
        "zh": ("黄码，请按所在社区的要求处理",),
        "en": ("Yellow code: please follow your community's instructions",),
    },
    "stale_code": {
        "zh": ("健康码已过期，请刷新后重新出示",),
        "en": ("Code out of date: refresh your code and show it again",),
    },
    "malformed_code": {
        "zh": ("此码已损坏或格式不正确，请联系工作人员",),
        "en": ("Code damaged or in an unknown format: please see staff",),
    },
    "incomplete_code": {
        "zh": ("此码由多个部分组成，请出示单个二维码或联系工作人员",),
        "en": ("Code has several parts: show it as one QR code or see staff",),
    },
    "invalid_signature": {
        "zh": ("证书签名无效，请联系工作人员",),
        "en": ("Certificate signature not valid: please see staff",),
    },
    "untrusted_issuer": {
        "zh": ("签发机构不在信任列表中，请联系工作人员",),
        "en": ("Issuer not trusted here: please see staff",),
    },
    "expired": {
        "zh": ("证书已过期",),
        "en": ("Certificate expired",),
    },
    "not_yet_valid": {
        "zh": ("证书尚未生效，请联系工作人员",),
        "en": ("Certificate not valid yet: please see staff",),
    },
    "revoked": {
        "zh": ("证书已被签发机构撤销",),
        "en": ("Certificate revoked by its issuer",),
    },
    "replayed": {
        "zh": ("此码刚刚已在本机使用，请出示本人的码",),
        "en": ("Code already used here: please show your own code",),
    },
    "trust_list_stale": {
        "zh": ("信任列表已过期，请联系工作人员",),
        "en": ("Trust list out of date: please see staff",),
    },
    "clock_unsynchronised": {
        "zh": ("设备时钟未同步，无法核验证书，请联系工作人员",),
        "en": ("Kiosk clock not synchronised: please see staff",),
    },
    "test_required": {
        "zh": ("需要近期核酸检测阴性结果",),
        "en": ("A recent negative test is required",),
    },
}


# Words on touch buttons (digits are drawn as they are).
BUTTONS: dict[str, dict[str, str]] = {
    "family": {"zh": "没有手机？", "en": "No phone?"},
    "ok": {"zh": "确定", "en": "OK"},
    "delete": {"zh": "删除", "en": "Delete"},
    "cancel": {"zh": "取消", "en": "Cancel"},
}


def _entry(table: dict[str, dict], key: str) -> dict:
    try:
        return table[str(key)]
    except KeyError:
        raise KeyError(f"no screen text for {key!r}") from None


def _check_language(language: str) -> None:
    if language not in ("zh", "en", "both"):
        raise ValueError(f"language must be 'zh', 'en' or 'both', got {language!r}")


def title(key: str, language: Language) -> list[str]:
    """The headline of a screen kind: one line, or Chinese above English for "both"."""
    _check_language(language)
    entry = _entry(TITLES, key)
    return [entry["zh"], entry["en"]] if language == "both" else [entry[language]]


def label(key: str, language: Language) -> list[str]:
    """A button's words: one line, or Chinese above English for "both"."""
    _check_language(language)
    entry = _entry(BUTTONS, key)
    return [entry["zh"], entry["en"]] if language == "both" else [entry[language]]


def lines(key: str, language: Language) -> list[str]:
    """The lines for a screen kind or a reason code; for "both" each Chinese line sits above its English one."""
    _check_language(language)
    entry = _entry(LINES, key)
    if language != "both":
        return list(entry[language])
    paired: list[str] = []
    for zh, en in zip(entry["zh"], entry["en"], strict=True):
        paired += [zh, en]
    return paired
