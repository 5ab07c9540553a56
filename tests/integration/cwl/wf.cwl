cwlVersion: v1.2
class: Workflow
inputs:
  infile: File
outputs:
  result:
    type: File
    outputSource: step2/out
steps:
  step1:
    run: wc.cwl
    in: {infile: infile}
    out: [count]
  step2:
    run: cat.cwl
    in: {f: step1/count}
    out: [out]
