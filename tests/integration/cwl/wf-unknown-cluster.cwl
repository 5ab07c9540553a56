cwlVersion: v1.2
class: Workflow
$namespaces:
  arv: "http://arvados.org/cwl#"
inputs:
  infile: File
outputs:
  result:
    type: File
    outputSource: step1/count
steps:
  step1:
    run: wc.cwl
    in: {infile: infile}
    out: [count]
    hints:
      arv:ClusterTarget:
        cluster_id: zzzzz
