from archipelago.cli.main import app

app(prog_name="archi")
