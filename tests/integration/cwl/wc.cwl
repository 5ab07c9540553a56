cwlVersion: v1.2
class: CommandLineTool
baseCommand: [wc, -l]
inputs:
  infile: File
stdin: $(inputs.infile.path)
stdout: count.txt
outputs:
  count:
    type: stdout
