cwlVersion: v1.2
class: CommandLineTool
baseCommand: cat
inputs:
  f:
    type: File
    inputBinding: {position: 1}
stdout: out.txt
outputs:
  out:
    type: stdout
