from .cli import main

main(prog_name="pix2pix")
