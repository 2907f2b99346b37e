"""seed the character catalog (the 13 characters of docs/api.md, character)"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def _catalog() -> sa.TableClause:
    # SQLite has no schemas; the migration runner's schema translation does not reach these DML
    # statements, so the schema is chosen here.
    schema = None if op.get_bind().dialect.name == "sqlite" else "character"
    return sa.table(
        "catalog",
        sa.column("code", sa.String),
        sa.column("id", sa.Uuid),
        sa.column("position", sa.Integer),
        sa.column("name", sa.String),
        sa.column("match", sa.String),
        sa.column("type", sa.String),
        sa.column("dialog", sa.String),
        sa.column("cdn_code", sa.String),
        schema=schema,
    )


# The catalog as it was when this revision was written (a revision is history: it never reads live
# code or data files). (code, id, name, match, type, dialog, cdn_code), in catalog order.
ROWS = [
    (
        "char-eco",
        "748dd94a-7efe-5bc1-bc45-554746383fd2",
        "이코",
        None,
        "환경을 사랑하는 AI 분리배출 도우미",
        "안녕! 나는 이코야. 버릴 물건을 찍어 보내 주면 올바른 분리배출 방법을 알려 줄게. 함께 친구들을 모아 보자!",
        "eco",
    ),
    (
        "char-paepy",
        "2da5b49d-391c-51f3-925b-98c3fe94b98f",
        "페이피",
        "종이",
        "골판지류, 신문지, 과자상자, 백판지, 책자",
        "테이프랑 스테이플러 심은 떼어 주고, 상자는 납작하게 접어서 내놓아 줘. 젖지 않게 부탁해!",
        "paper",
    ),
    (
        "char-factory",
        "a35b53f5-1f16-5885-8749-98b630374bbb",
        "팩토리",
        "종이팩",
        "일반팩, 주스팩, 소주팩, 두유팩",
        "우유팩은 물로 헹궈서 말린 다음, 일반 종이와 섞지 말고 따로 모아 줘. 그래야 화장지로 다시 태어날 수 있어!",
        "paper_products",
    ),
    (
        "char-petty",
        "84bc07ea-798b-50e6-8edb-757e66d4af53",
        "페티",
        "무색페트병",
        "먹는샘물 페트병, 음료 페트병",
        "라벨을 벗기고 깨끗이 헹군 다음, 꾹 눌러 찌그러뜨리고 뚜껑을 닫아서 투명 페트병 칸에 넣어 줘!",
        "pet",
    ),
    (
        "char-plea",
        "de0ad0fa-22d8-5bde-a7d8-94f5ae906d7e",
        "플리",
        "플라스틱류",
        "PET, PP, PE, PS, 용기",
        "내용물을 비우고 헹궈서 내놓아 줘. 펌프 용기의 펌프 꼭지는 재활용이 어려워서 일반쓰레기로 버려야 해.",
        "plastic",
    ),
    (
        "char-bini",
        "10dab3e1-1411-5917-8929-7aac53a9538e",
        "비니",
        "비닐류",
        "비닐포장재, 1회용 비닐봉투, 필름류",
        "깨끗한 비닐만 모아 줘. 음식물이 묻어 지워지지 않는 비닐이나 돗자리, 고무장갑은 일반쓰레기란다.",
        "vinyl",
    ),
    (
        "char-foamy",
        "4ef8318d-6d9b-5213-928e-0ef95e4d3612",
        "폼이",
        "발포합성수지",
        "식품용기, 과일난좌, 전자제품 포장용기, 단열재",
        "스티로폼에 붙은 스티커나 테이프, 다른 재질은 모두 떼어 내고 하얀 몸만 보내 줘. 그래야 포근하게 다시 태어나!",
        "styrofoam",
    ),
    (
        "char-glassy",
        "dbbb0a96-4170-575c-838f-ebd680205b2b",
        "글래시",
        "유리병",
        "3색 유리병(투명, 녹색, 갈색), 이색병, 소주병, 맥주병",
        "소주병, 맥주병, 음료수병은 가게에 돌려주면 빈용기 보증금을 돌려받을 수 있어. 깨지지 않게 조심히 다뤄 줘!",
        "glass",
    ),
    (
        "char-metally",
        "a211e4f1-b8c3-5b61-8bc1-4ccd99c8e52e",
        "메탈리",
        "금속류",
        "철캔, 알류미늄캔, 기타캔류, 고철",
        "가위나 칼처럼 날카로운 금속은 신문지로 단단히 감싸서 버려 줘. 수거하는 분들이 다치지 않도록!",
        "metal",
    ),
    (
        "char-cotton",
        "b39d04b3-9b7a-595d-8df2-3d1ae1cf6fac",
        "코튼",
        "의류및원단",
        "재킷, 티셔츠, 바지, 신발, 가방",
        "입던 옷은 의류수거함으로! 하지만 이불, 베개, 방석, 인형은 수거함이 아니라 종량제봉투나 대형폐기물로 버려야 해.",
        "clothes",
    ),
    (
        "char-barry",
        "f09e4322-d64d-523b-be0d-27e597840667",
        "배리",
        "전지",
        "1차전지(수은, 알칼리망 전지), 2차전지(니켈, 리튬이온)",
        "리튬 배터리는 불이 날 수 있어서 꼭 폐건전지 전용 수거함에 넣어 줘. 일반쓰레기에 넣으면 위험해!",
        "battery",
    ),
    (
        "char-lighty",
        "c7b97cdc-a692-5984-b9f3-a6a879a5e795",
        "라이티",
        "조명제품",
        "형광등(직관형, 환형, 안정기내장형), LED(전구형, 직관형)",
        "형광등은 깨지지 않게 포장해서 전용 수거함에 넣어 줘. 깨지면 해로운 물질이 나올 수 있거든!",
        "lighting",
    ),
    (
        "char-elec",
        "6b1dac41-9883-58b2-87c1-33bf35a24a27",
        "일렉",
        "전기전자제품",
        "냉장고, TV, 휴대폰, 정수기",
        "아직 작동하는 전자제품이라면 재활용센터에 팔 수도 있어. 큰 가전은 무상 방문수거 서비스도 이용해 봐!",
        "monitor",
    ),
]


def upgrade() -> None:
    catalog = _catalog()
    op.execute(catalog.delete())
    columns = ("code", "id", "name", "match", "type", "dialog", "cdn_code")
    op.bulk_insert(
        catalog,
        [dict(zip(columns, row, strict=True)) | {"id": uuid.UUID(row[1]), "position": i} for i, row in enumerate(ROWS)],
    )


def downgrade() -> None:
    op.execute(_catalog().delete())
