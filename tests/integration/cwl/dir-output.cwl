# A tool whose outputs are a directory with files in it and a file beside it (and scratch it leaves).
cwlVersion: v1.2
class: CommandLineTool
requirements: {ShellCommandRequirement: {}}
inputs: []
arguments:
  - {shellQuote: false, valueFrom: "mkdir -p results/deep && echo x > results/x.txt && echo y > results/deep/y.txt && echo n > note.txt && echo s > scratch.txt"}
outputs:
  results: {type: Directory, outputBinding: {glob: results}}
  note: {type: File, outputBinding: {glob: note.txt}}
