# wc.cwl with the inputs its step's arv:ClusterTarget reads.
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [wc, -l]
inputs:
  infile: File
  where: {type: string?, doc: the cluster to run on}
  project: {type: string?, doc: the project to own the request ("" for the home project)}
stdin: $(inputs.infile.path)
stdout: count.txt
outputs:
  count:
    type: stdout
