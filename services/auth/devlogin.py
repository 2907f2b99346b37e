"""The self-contained HTML of the development login page (no external assets).

The page also stands in for Kakao, Google or Naver in development when that provider has no
credentials configured; it then says so in its title, so nobody mistakes it for the real thing.
"""

from __future__ import annotations

from html import escape

PROVIDER_NAMES = {"kakao": "카카오 (Kakao)", "google": "구글 (Google)", "naver": "네이버 (Naver)"}

_STYLE = """
body{font-family:system-ui,-apple-system,'Apple SD Gothic Neo','Noto Sans KR',sans-serif;background:#f3f7f2;
margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;color:#1d2b1f}
main{background:#fff;border-radius:16px;box-shadow:0 4px 24px #0001;padding:28px;width:min(360px,90vw)}
.badge{display:inline-block;background:#ffe9a8;color:#6b4e00;border-radius:8px;padding:2px 8px;font-size:12px}
h1{font-size:20px;margin:12px 0 4px}p{color:#4a5a4c;font-size:14px}
label{display:block;font-size:13px;margin-top:14px}
input{width:100%;box-sizing:border-box;padding:10px;border:1px solid #c9d6c8;border-radius:8px;font-size:15px}
button{margin-top:20px;width:100%;padding:12px;border:0;border-radius:8px;background:#2f9e44;color:#fff;
font-size:15px}.error{color:#b3261e}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="ko"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body><main>{body}</main></body></html>"
    )


def login_form(state: str, provider: str = "dev", message: str | None = None) -> str:
    error = f'<p class="error">{escape(message)}</p>' if message else ""
    stand_in = PROVIDER_NAMES.get(provider)
    if stand_in:
        title = f"{stand_in} 개발용 로그인"
        intro = (
            f"{escape(stand_in)} 로그인 정보가 설정되지 않은 개발 서버라서, 실제 {escape(stand_in)} 대신 "
            "이 개발용 로그인으로 들어가요. 실제 소셜 계정이 아니에요. "
            f"(Development login standing in for {escape(provider)}: its client id is not configured.)"
        )
    else:
        title = "Eco² 개발용 로그인"
        intro = "실제 소셜 계정 없이 로컬에서 로그인 흐름을 시험하는 페이지예요."
    return _page(
        title,
        '<span class="badge">DEVELOPMENT ONLY · 개발용</span>'
        f"<h1>{escape(title)}</h1>"
        f"<p>{intro} 같은 아이디로 다시 로그인하면 같은 사용자가 됩니다.</p>"
        f"{error}"
        '<form method="post" action="authorize">'
        f'<input type="hidden" name="state" value="{escape(state)}">'
        '<label for="login">아이디 (login)</label>'
        '<input id="login" name="login" required maxlength="64" pattern="[A-Za-z0-9._\\-]{1,64}" '
        'autocomplete="username" placeholder="tester">'
        '<label for="nickname">닉네임 (선택)</label>'
        '<input id="nickname" name="nickname" maxlength="30" placeholder="에코친구">'
        '<button type="submit">로그인</button></form>',
    )


def error_page(message: str) -> str:
    return _page(
        "Eco² 개발용 로그인 오류",
        '<span class="badge">DEVELOPMENT ONLY · 개발용</span><h1>로그인을 계속할 수 없어요</h1>'
        f'<p class="error">{escape(message)}</p><p>앱에서 로그인을 처음부터 다시 시작해 주세요.</p>',
    )
