cwlVersion: v1.2
class: CommandLineTool
doc: Select a cohort's patients and summarise the treatment effect, next to the cohort.
baseCommand: python3
inputs:
  script: {type: File, inputBinding: {position: 1}}
  cohort: {type: File, inputBinding: {position: 2}}
  min_age: {type: int, inputBinding: {position: 3}}
  where: {type: string?, doc: "the cluster that holds the cohort (for arv:ClusterTarget)"}
stdout: summary.json
outputs:
  summary: {type: stdout}
