# A tool reading a file two directories down in a Directory input (whose listing the job gives).
cwlVersion: v1.2
class: CommandLineTool
inputs:
  dir1:
    type: Directory
    inputBinding:
      valueFrom: $(self.listing[0].listing[0].path)
baseCommand: cat
stdout: out.txt
outputs:
  out: {type: File, outputBinding: {glob: out.txt}}
