from archipelago.ids import INFIX, UUID_RE, new_uuid, type_infix


def test_infixes_are_derived_from_class_names_as_arvados_does():
    for class_name, infix in INFIX.items():
        if class_name != "Volume":  # config-only in Arvados; its infix is a constant there
            assert type_infix(class_name) == infix


def test_new_uuid_layout():
    uuid = new_uuid("z1111", INFIX["Collection"])
    assert UUID_RE.fullmatch(uuid) and uuid.startswith("z1111-4zz18-")
