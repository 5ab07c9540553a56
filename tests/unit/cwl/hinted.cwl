# A tool that names its own cluster.
cwlVersion: v1.2
class: CommandLineTool
$namespaces:
  arv: "http://arvados.org/cwl#"
hints:
  arv:ClusterTarget: {cluster_id: z1111}
inputs:
  where: string
baseCommand: "true"
outputs: []
