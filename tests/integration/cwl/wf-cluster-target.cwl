cwlVersion: v1.2
class: Workflow
$namespaces:
  arv: "http://arvados.org/cwl#"
requirements:
  arv:ClusterTarget: {}
inputs:
  infile: File
  where: string
outputs:
  result:
    type: File
    outputSource: step2/out
steps:
  step1:
    run: wc.cwl
    in: {infile: infile, where: where}
    out: [count]
    hints:
      arv:ClusterTarget:
        cluster_id: $(inputs.where)
  step2:
    run: cat.cwl
    in: {f: step1/count}
    out: [out]
